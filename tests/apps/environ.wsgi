"""Dump the WSGI environ as JSON.

str/int/float/bool/None values are emitted as JSON, tuples/lists as arrays
(recursively), anything else as "<TypeName>" (e.g. wsgi.input -> "<Input>"),
so two implementations can be compared value by value.
"""
import json
import os
import sys
import threading


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, type):
        return "<type %s>" % v.__name__
    return "<%s>" % type(v).__name__


def application(environ, start_response):
    out = {k: _jsonable(v) for k, v in environ.items()}
    if environ.get("QUERY_STRING") == "mutate":
        # (the server must not let one request's changes reach the next one's environ)
        for k, v in list(environ.items()):
            if isinstance(v, str):
                environ[k] = v + "-changed"
        environ["X_ADDED"] = "added"
    # a few facts about the objects themselves
    out["x-types"] = {
        k: type(v).__name__ for k, v in environ.items()
    }
    inp = environ["wsgi.input"]
    out["x-input-methods"] = sorted(
        m for m in ("read", "readline", "readlines", "__iter__", "close") if hasattr(inp, m)
    )
    err = environ["wsgi.errors"]
    out["x-errors-methods"] = sorted(
        m for m in ("write", "writelines", "flush") if hasattr(err, m)
    )
    out["x-process"] = {
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "python": "%d.%d" % sys.version_info[:2],
        "executable_prefix": sys.prefix,
    }
    body = json.dumps(out, sort_keys=True, indent=1).encode("utf-8")
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
