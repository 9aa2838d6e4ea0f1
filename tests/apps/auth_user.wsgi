"""WSGIAuthUserScript for tests/test_auth_scripts.py; the user name picks the behaviour.

check_password(environ, user, password) (AuthBasicProvider wsgi) and
get_realm_hash(environ, user, realm) (AuthDigestProvider wsgi):

    spy / secret     the one real account (True / its digest hash)
    rename / x       Basic: returns the str "renamed-user" (becomes REMOTE_USER)
    boom             raises RuntimeError("auth-boom")
    badtype          returns 42 (neither bool, None nor str)
    bytesuser        returns b"bytesuser" (Basic) / the hash as bytes (Digest)
    env              dumps the environ it got to var/auth_user_<hook>.json, then accepts
                     password "env"
    anyone else      password "letmein" -> True, otherwise None (unknown user)
"""
import hashlib
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.append(_here)
import auth_common  # noqa: E402

SECRETS = {"spy": "secret", "env": "env", "bytesuser": "secret"}


def _ha1(user, realm, password):
    return hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode("utf-8")).hexdigest()


def check_password(environ, user, password):
    if user == "boom":
        raise RuntimeError("auth-boom")
    if user == "badtype":
        return 42
    if user == "rename":
        return "renamed-user" if password == "x" else False
    if user == "bytesuser":
        return b"bytesuser"
    if user == "env":
        auth_common.dump("auth_user_check_password", environ, user=user, password=password)
    if user in SECRETS:
        return password == SECRETS[user]
    if password == "letmein":
        return True
    return None


def get_realm_hash(environ, user, realm):
    if user == "boom":
        raise RuntimeError("auth-boom")
    if user == "badtype":
        return 42
    if user == "bytesuser":
        return _ha1(user, realm, SECRETS[user]).encode("ascii")
    if user == "env":
        auth_common.dump("auth_user_get_realm_hash", environ, user=user, realm=realm)
    if user in SECRETS:
        return _ha1(user, realm, SECRETS[user])
    return None
