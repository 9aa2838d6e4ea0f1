"""Report which Python interpreter / application group serves the request.

Isolation check: every app that runs registers its SCRIPT_NAME in a marker
module kept in sys.modules. Two mounts in the same application group (same
interpreter) see each other's names, mounts in different groups do not.
Send the requests over one keep-alive connection so they reach one process.
"""
import json
import os
import sys
import types

try:  # CPython 3.8-3.12
    import _xxsubinterpreters as _interp
except ImportError:  # 3.13+
    try:
        import _interpreters as _interp
    except ImportError:
        _interp = None

_MARKER = "rwsgi_appgroup_marker"
marker = sys.modules.get(_MARKER)
if marker is None:
    marker = types.ModuleType(_MARKER)
    marker.seen = set()
    marker.loads = 0
    sys.modules[_MARKER] = marker
marker.loads += 1
LOADS_AT_IMPORT = marker.loads


def _interp_ids():
    if _interp is None:
        return None, None
    try:
        cur, main = _interp.get_current(), _interp.get_main()
        return int(cur), int(main)
    except Exception:
        return None, None


def application(environ, start_response):
    name = environ.get("SCRIPT_NAME", "")
    marker.seen.add(name)
    cur, main = _interp_ids()
    out = {
        "application_group": environ.get("mod_wsgi.application_group"),
        "process_group": environ.get("mod_wsgi.process_group"),
        "script_name": name,
        "pid": os.getpid(),
        "interp_id": cur,
        "main_interpreter": (cur == main) if cur is not None else None,
        "seen": sorted(marker.seen),
        "module_loads": marker.loads,
        "sys_modules_id": id(sys.modules),
        "sys_id": id(sys),
        "sys_path": list(sys.path),
        "module_name": __name__,
        # the script module is registered in sys.modules under its __name__
        # (mod_wsgi: "_mod_wsgi_" + md5(path)); Flask(__name__), pickle rely on it
        "in_sys_modules": sys.modules.get(__name__) is not None
        and getattr(sys.modules[__name__], "application", None) is application,
        "file": globals().get("__file__"),
    }
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
