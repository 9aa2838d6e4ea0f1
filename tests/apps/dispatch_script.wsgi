"""WSGIDispatchScript for tests/test_dispatch_handler.py.

The request's query string drives it: pg=, ag=, co= are returned by process_group(),
application_group() and callable_object() ("none" -> None, "boom" -> raises,
"badtype" -> 42; absent -> None); dump=NAME writes the environ each hook got to
var/dispatch_NAME_<hook>.json; "whoami" as ag= or co= returns a value naming the
interpreter the dispatch script runs in.
"""
import os
import sys
from urllib.parse import parse_qs

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.append(_here)
import auth_common  # noqa: E402

CALLS = []  # hook names called, in order, per module load


def _decide(environ, key, hook):
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
    CALLS.append(hook)
    if "dump" in q:
        auth_common.dump("dispatch_%s_%s" % (q["dump"], hook), environ, calls=list(CALLS))
    v = q.get(key)
    if v is None or v == "none":
        return None
    if v == "boom":
        raise RuntimeError("dispatch-boom-" + hook)
    if v == "badtype":
        return 42
    if v == "bytes":
        return {"pg": b"beta", "ag": b"bytes-group", "co": b"other"}[key]
    if v == "whoami":
        return "dispatch-ran-in=" + environ.get("mod_wsgi.application_group", "?")
    return v


def process_group(environ):
    return _decide(environ, "pg", "process_group")


def application_group(environ):
    return _decide(environ, "ag", "application_group")


def callable_object(environ):
    return _decide(environ, "co", "callable_object")
