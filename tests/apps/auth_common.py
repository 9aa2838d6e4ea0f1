"""Shared by the auth_*/dispatch_*/handler_* test scripts: dump what a hook saw to
{root}/var/<name>.json (var/ is world-writable; the hooks run in Apache children).

Not a WSGI script itself: the hook scripts put their own directory on sys.path and
`import auth_common`.
"""
import json
import os
import sys
import threading

VAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var")


def jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    return "<%s>" % type(v).__name__


def facts():
    """Where the code runs: process, interpreter, mod_wsgi module attributes."""
    try:
        import mod_wsgi
        mw = {
            "process_group": getattr(mod_wsgi, "process_group", None),
            "application_group": getattr(mod_wsgi, "application_group", None),
        }
    except ImportError:
        mw = None
    return {
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "mod_wsgi": mw,
        "sys_modules_id": id(sys.modules),
    }


def dump(name, environ, **extra):
    out = {
        "environ": {k: jsonable(v) for k, v in environ.items()},
        "types": {k: type(v).__name__ for k, v in environ.items()},
        "environ_class": type(environ).__name__,
        "callables": sorted(k for k, v in environ.items() if callable(v)),
        "errors_can_write": hasattr(environ.get("wsgi.errors"), "write"),
        "facts": facts(),
        "extra": {k: jsonable(v) for k, v in extra.items()},
    }
    path = os.path.join(VAR, name + ".json")
    tmp = "%s.%d.%d.tmp" % (path, os.getpid(), threading.get_ident())
    with open(tmp, "w") as f:
        json.dump(out, f, sort_keys=True, indent=1)
    os.replace(tmp, path)

