# Template for script-reloading tests: a test rewrites VERSION (and touches the
# file) and expects the next request to see the new value.
import os

VERSION = "v1"
IMPORTED_PID = os.getpid()


def application(environ, start_response):
    body = ("version=%s pid=%d" % (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
