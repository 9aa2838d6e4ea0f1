"""A WSGIDispatchScript that defines none of the hooks: the configured routing stands."""
VALUE = 1
