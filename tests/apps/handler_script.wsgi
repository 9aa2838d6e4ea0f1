"""WSGIHandlerScript for tests/test_dispatch_handler.py: handle_request() serves the
requested file (SCRIPT_FILENAME) and reports what it saw as JSON.

reload_required(resource) asks mod_wsgi to reload this script before a request whose
file name ends with "-reload.xyz"; CALLS counts the requests this module load served.
"""
import json
import os

CALLS = 0
RELOAD_RESOURCES = []


def reload_required(resource):
    RELOAD_RESOURCES.append(resource)
    return resource.endswith("-reload.xyz")


def handle_request(environ, start_response):
    global CALLS
    CALLS += 1
    path = environ.get("SCRIPT_FILENAME", "")
    try:
        with open(path) as f:
            content = f.read()
    except OSError as e:
        content = None
        error = type(e).__name__
    else:
        error = None
    try:
        import mod_wsgi
        module_pg = mod_wsgi.process_group
    except ImportError:
        module_pg = None
    out = {
        "callable": "handle_request",
        "calls": CALLS,
        "content": content,
        "open_error": error,
        "pid": os.getpid(),
        "module_process_group": module_pg,
        "request_rec": type(environ["apache.request_rec"]).__name__
        if "apache.request_rec" in environ else None,
        "authorization": environ.get("HTTP_AUTHORIZATION"),
    }
    for k in ("SCRIPT_FILENAME", "SCRIPT_NAME", "PATH_INFO", "REQUEST_URI", "QUERY_STRING",
              "mod_wsgi.handler_script", "mod_wsgi.request_handler", "mod_wsgi.callable_object",
              "mod_wsgi.process_group", "mod_wsgi.application_group", "wsgi.version"):
        v = environ.get(k)
        out[k] = list(v) if isinstance(v, tuple) else v
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    body = b"handler_script.wsgi application() called instead of handle_request()"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
