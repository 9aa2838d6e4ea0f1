"""A WSGIHandlerScript without handle_request (only application): mod_wsgi reports the
missing 'handle_request'."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"application, not handle_request"]
