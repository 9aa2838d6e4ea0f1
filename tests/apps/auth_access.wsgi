"""WSGIAccessScript for tests/test_auth_scripts.py: allow_access(environ, host).

The query string picks the behaviour: "deny" -> False, "none" -> None, "boom" -> raises,
"badtype" -> 1 (not a bool), "env" -> dumps environ and host to var/auth_access.json and
allows; otherwise the client host decides: 127.0.0.2 is refused, anything else allowed.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.append(_here)
import auth_common  # noqa: E402


def allow_access(environ, host):
    q = environ.get("QUERY_STRING", "")
    if q == "deny":
        return False
    if q == "none":
        return None
    if q == "boom":
        raise RuntimeError("access-boom")
    if q == "badtype":
        return 1
    if q == "env":
        auth_common.dump("auth_access", environ, host=host)
        return True
    return host != "127.0.0.2"
