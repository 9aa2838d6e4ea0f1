"""Reports where it runs, for tests/test_dispatch_handler.py: the callable that served the
request (application / other), mod_wsgi.process_group / application_group /
callable_object from environ, the pid, and the mod_wsgi module's own process_group /
application_group."""
import json
import os


def _report(which, environ, start_response):
    try:
        import mod_wsgi
        mw = {"process_group": mod_wsgi.process_group, "application_group": mod_wsgi.application_group}
    except ImportError:
        mw = None
    out = {
        "callable": which,
        "process_group": environ.get("mod_wsgi.process_group"),
        "application_group": environ.get("mod_wsgi.application_group"),
        "callable_object": environ.get("mod_wsgi.callable_object"),
        "script_name": environ.get("SCRIPT_NAME"),
        "pid": os.getpid(),
        "module": mw,
        "request_rec": type(environ["apache.request_rec"]).__name__
        if "apache.request_rec" in environ else None,
    }
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    return _report("application", environ, start_response)


def other(environ, start_response):
    return _report("other", environ, start_response)
