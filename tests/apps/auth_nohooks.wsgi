"""An auth/access/group script that defines none of the hook functions (mod_wsgi logs
"... does not provide ..." and refuses)."""
VALUE = 1
