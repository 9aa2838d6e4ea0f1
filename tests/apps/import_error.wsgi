# Fails at import time: the module raises before `application` exists.
import os

MARKER = "rwsgi-import-error-marker"


def helper():
    return 1


raise RuntimeError("import failed on purpose: " + MARKER)


def application(environ, start_response):  # never reached
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable"]
