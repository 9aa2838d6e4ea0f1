"""WSGIAuthGroupScript for tests/test_auth_scripts.py: groups_for_user(environ, user),
the user name picks the behaviour (users authenticate with auth_user.wsgi, password
"letmein"):

    spy        ["secret-agents", "staff"]
    tuple      ("secret-agents",)
    bytes      [b"secret-agents"]
    gen        a generator yielding "secret-agents"
    citizen    [] (member of no group)
    outsider   ["staff"] (not in the required group)
    gboom      raises RuntimeError("group-boom")
    gbadtype   42 (not iterable)
    gbaditem   [1] (an item that is not a string)
    gnonlatin  ["gr\u20acup"] (a str that is not latin-1)
    env        dumps its environ to var/auth_group.json, then ["secret-agents"]
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.append(_here)
import auth_common  # noqa: E402


def groups_for_user(environ, user):
    if user == "spy":
        return ["secret-agents", "staff"]
    if user == "tuple":
        return ("secret-agents",)
    if user == "bytes":
        return [b"secret-agents"]
    if user == "gen":
        return (g for g in ["secret-agents"])
    if user == "outsider":
        return ["staff"]
    if user == "gboom":
        raise RuntimeError("group-boom")
    if user == "gbadtype":
        return 42
    if user == "gbaditem":
        return [1]
    if user == "gnonlatin":
        return ["gr\u20acup"]
    if user == "env":
        auth_common.dump("auth_group", environ, user=user)
        return ["secret-agents"]
    return []
