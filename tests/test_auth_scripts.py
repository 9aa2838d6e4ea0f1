"""WSGIAuthUserScript / WSGIAuthGroupScript / WSGIAccessScript (and WSGIGroupAuthoritative,
WSGIUserAuthoritative): Apache authentication, authorization and host access decided by
Python hooks, as mod_wsgi 4.9.4 does it on Apache 2.4 (facts and source references:
/tmp/modwsgi-facts/auth_dispatch.md).

- `AuthBasicProvider wsgi` calls check_password(environ, user, password): True -> granted,
  False -> AUTH_DENIED (Apache: 401, AH01617 "Password Mismatch"), None -> AUTH_USER_NOT_FOUND
  (401, AH01618 "not found"; the next provider is asked), a str -> granted *as that user*
  (REMOTE_USER), an exception or any other type -> AUTH_GENERAL_ERROR (500, traceback).
- `AuthDigestProvider wsgi` calls get_realm_hash(environ, user, realm): the MD5 hex of
  "user:realm:password" (str or bytes), None -> not found, else 500.
- `Require wsgi-group NAME...` calls groups_for_user(environ, user): an iterable of str
  (latin-1) or bytes; anything else, or an exception, denies (401, never 500).
- WSGIAccessScript calls allow_access(environ, host): True -> OK, None -> no opinion,
  False / an exception / a non-bool -> 403 "Client denied by server configuration".
- The hooks always run in the Apache child (never in a daemon process, also with
  WSGIProcessGroup set and WSGIRestrictEmbedded On), by default in the main interpreter
  (application group ''), and get a reduced environ (no wsgi.input, REMOTE_USER or
  Authorization).

The protected application is apps/environ.wsgi; the site runs embedded and in a daemon
group (conftest.in_mode): the hooks behave the same, the application runs elsewhere.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import MODES, in_mode
from harness import ApacheServer, parse_response

AUTH_MODULES = ["authn_core", "auth_basic", "auth_digest", "authz_user", "authn_file",
                "authz_groupfile"]

BASIC = """
    AuthType Basic
    AuthBasicProvider wsgi
    WSGIAuthUserScript {apps}/auth_user.wsgi
"""

CONFIG = """
WSGIScriptAlias /basic {apps}/environ.wsgi
WSGIScriptAlias /digest {apps}/environ.wsgi
WSGIScriptAlias /group {apps}/environ.wsgi
WSGIScriptAlias /anygroup {apps}/environ.wsgi
WSGIScriptAlias /groupnonauth {apps}/environ.wsgi
WSGIScriptAlias /acc {apps}/environ.wsgi
WSGIScriptAlias /accdenied {apps}/environ.wsgi
WSGIScriptAlias /chain {apps}/environ.wsgi
WSGIScriptAlias /appgroup {apps}/environ.wsgi
WSGIScriptAlias /pass {apps}/environ.wsgi
WSGIScriptAlias /reload {apps}/environ.wsgi
WSGIScriptAlias /missing {apps}/environ.wsgi
WSGIScriptAlias /broken {apps}/environ.wsgi
WSGIScriptAlias /nohooks {apps}/environ.wsgi
WSGIScriptAlias /noscript {apps}/environ.wsgi
WSGIScriptAlias /accmissing {apps}/environ.wsgi
WSGIScriptAlias /accnohooks {apps}/environ.wsgi
WSGIScriptAlias /groupnohooks {apps}/environ.wsgi
<Location /basic>
    AuthName "Basic Area"
""" + BASIC + """
    Require valid-user
</Location>
<Location /digest>
    AuthType Digest
    AuthName "Digest Area"
    AuthDigestProvider wsgi
    WSGIAuthUserScript {apps}/auth_user.wsgi
    Require valid-user
</Location>
<Location /group>
    AuthName "Group Area"
""" + BASIC + """
    WSGIAuthGroupScript {apps}/auth_group.wsgi
    Require wsgi-group secret-agents
</Location>
<Location /groupnonauth>
    AuthName "Group Area"
""" + BASIC + """
    WSGIAuthGroupScript {apps}/auth_group.wsgi
    WSGIGroupAuthoritative Off
    Require wsgi-group secret-agents
</Location>
<Location /anygroup>
    AuthName "Any Group"
""" + BASIC + """
    WSGIAuthGroupScript {apps}/auth_group.wsgi
    AuthGroupFile {apps}/auth_groups.txt
    <RequireAny>
        Require wsgi-group secret-agents
        Require group file-agents
    </RequireAny>
</Location>
<Location /acc>
    WSGIAccessScript {apps}/auth_access.wsgi
</Location>
<Location /accdenied>
    WSGIAccessScript {apps}/auth_access.wsgi
    Require all denied
</Location>
<Location /chain>
    AuthType Basic
    AuthName "Chain"
    AuthBasicProvider wsgi file
    AuthUserFile {apps}/auth_users.htpasswd
    WSGIAuthUserScript {apps}/auth_user.wsgi
    Require valid-user
</Location>
<Location /appgroup>
    AuthType Basic
    AuthName "App Group"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {apps}/auth_user.wsgi application-group=authers
    Require valid-user
</Location>
<Location /pass>
    AuthName "Pass"
""" + BASIC + """
    WSGIPassApacheRequest On
    Require valid-user
</Location>
<Location /reload>
    AuthType Basic
    AuthName "Reload"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {var}/auth_reload.wsgi
    Require valid-user
</Location>
<Location /missing>
    AuthType Basic
    AuthName "Missing"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {apps}/auth_does_not_exist.wsgi
    Require valid-user
</Location>
<Location /broken>
    AuthType Basic
    AuthName "Broken"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {apps}/auth_broken.wsgi
    Require valid-user
</Location>
<Location /nohooks>
    AuthType Basic
    AuthName "No hooks"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {apps}/auth_nohooks.wsgi
    Require valid-user
</Location>
<Location /noscript>
    AuthType Basic
    AuthName "No script"
    AuthBasicProvider wsgi
    Require valid-user
</Location>
<Location /accmissing>
    WSGIAccessScript {apps}/auth_does_not_exist.wsgi
</Location>
<Location /accnohooks>
    WSGIAccessScript {apps}/auth_nohooks.wsgi
</Location>
<Location /groupnohooks>
    AuthName "Group no hooks"
""" + BASIC + """
    WSGIAuthGroupScript {apps}/auth_nohooks.wsgi
    Require wsgi-group secret-agents
</Location>
"""

RELOAD_V1 = "def check_password(environ, user, password):\n    return password == 'one'\n"
RELOAD_V2 = "def check_password(environ, user, password):\n    return password == 'two'\n"


@pytest.fixture(scope="module", params=MODES)
def srv(request, rwsgi_path):
    s = ApacheServer(rwsgi_path, config=in_mode(CONFIG, request.param),
                     name=f"auth-{request.param}", load_modules=AUTH_MODULES)
    (s.var / "auth_reload.wsgi").write_text(RELOAD_V1)
    os.chmod(s.var / "auth_reload.wsgi", 0o644)
    try:
        s.start()
    except BaseException:
        s.stop()
        raise
    s.mode = request.param
    yield s
    s.stop(wait=False)


# --------------------------------------------------------------------------
# helpers


def basic(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": "Basic " + token}


def get_as(srv, path, user, password, **kw):
    return srv.get(path, headers=basic(user, password), **kw)


def read_dump(srv, name):
    """The JSON a hook wrote with auth_common.dump(name, ...)."""
    return json.loads((srv.var / f"{name}.json").read_text())


def clear_dump(srv, name):
    try:
        (srv.var / f"{name}.json").unlink()
    except FileNotFoundError:
        pass


def curl_digest(srv, path, user, password):
    """(status, body) of a request with HTTP Digest authentication done by curl."""
    if shutil.which("curl") is None:
        pytest.skip("curl is needed for the Digest tests")
    p = subprocess.run(
        ["curl", "-s", "-S", "--max-time", "10", "--digest", "-u", f"{user}:{password}",
         "-w", "\n%{http_code}", srv.url + path],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    body, _, code = p.stdout.rpartition("\n")
    assert code.isdigit(), (p.stdout, p.stderr)
    return int(code), body


def get_from(srv, source_ip, path, timeout=10):
    """GET over a connection made from another loopback address (the access script's
    `host`). Only loopback addresses are used."""
    data = srv.build_request("GET", path)
    with socket.create_connection((srv.host, srv.port), timeout=timeout,
                                  source_address=(source_ip, 0)) as s:
        s.sendall(data)
        raw = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    return parse_response(raw)


def app_env(r):
    assert r.status == 200, r
    return r.json()


def assert_logged(srv, mark, *needles, timeout=5):
    """Every needle (substring or compiled regex) appears in the log since `mark`."""
    for n in needles:
        srv.wait_for_log(n, since=mark, timeout=timeout)
    return srv.error_log_since(mark)


# --------------------------------------------------------------------------
# Basic: check_password


def test_basic_without_credentials_is_challenged(srv):
    r = srv.get("/basic/")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Basic Area"'


def test_basic_right_password(srv):
    env = app_env(get_as(srv, "/basic/", "spy", "secret"))
    assert env["REMOTE_USER"] == "spy"
    assert env["AUTH_TYPE"] == "Basic"
    # the password is not leaked to the application (WSGIPassAuthorization Off)
    assert "HTTP_AUTHORIZATION" not in env
    assert env["mod_wsgi.process_group"] == ("suite" if srv.mode == "daemon" else "")


def test_basic_wrong_password_false_is_denied(srv):
    mark = srv.log_mark()
    r = get_as(srv, "/basic/", "spy", "wrong")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Basic Area"'
    # False = AUTH_DENIED: mod_auth_basic's "Password Mismatch" (AH01617)
    assert_logged(srv, mark, 'AH01617: user spy: authentication failure for "/basic/": '
                             'Password Mismatch')


def test_basic_unknown_user_none_is_not_found(srv):
    mark = srv.log_mark()
    r = get_as(srv, "/basic/", "nobody", "whatever")
    assert r.status == 401
    # None = AUTH_USER_NOT_FOUND (AH01618), not a password mismatch
    log = assert_logged(srv, mark, "AH01618: user nobody not found: /basic/")
    assert "AH01617" not in log


def test_basic_any_user_accepted_by_the_script(srv):
    env = app_env(get_as(srv, "/basic/", "joe", "letmein"))
    assert env["REMOTE_USER"] == "joe"


def test_basic_str_result_becomes_remote_user(srv):
    env = app_env(get_as(srv, "/basic/", "rename", "x"))
    assert env["REMOTE_USER"] == "renamed-user"
    assert env["AUTH_TYPE"] == "Basic"


def test_basic_exception_is_500_with_traceback(srv):
    mark = srv.log_mark()
    r = get_as(srv, "/basic/", "boom", "x")
    assert r.status == 500
    log = assert_logged(srv, mark,
                        f"Exception occurred processing WSGI script '{srv.apps}/auth_user.wsgi'",
                        "RuntimeError: auth-boom")
    assert "Traceback (most recent call last)" in log
    assert re.search(r'File ".*auth_user\.wsgi", line \d+, in check_password', log), log
    # the server still serves
    assert get_as(srv, "/basic/", "spy", "secret").status == 200


@pytest.mark.parametrize("user", ["badtype", "bytesuser"])
def test_basic_other_result_types_are_500(srv, user):
    # 42 and b"bytesuser" are neither True/False/None nor a str
    mark = srv.log_mark()
    r = get_as(srv, "/basic/", user, "secret")
    assert r.status == 500
    # mod_wsgi 4.9.4 logs it as an exception of the script, "TypeError: Basic auth provider
    # must return True, False None or user name as string"; 6.x as a plain error line with
    # the comma fixed
    assert_logged(srv, mark, re.compile(r"Basic auth provider must return True, False,? None "
                                        r"or user name as string"))


# --------------------------------------------------------------------------
# Digest: get_realm_hash


def test_digest_without_credentials_is_challenged(srv):
    r = srv.get("/digest/")
    assert r.status == 401
    challenge = r.header("WWW-Authenticate")
    assert challenge.startswith("Digest ") and 'realm="Digest Area"' in challenge


def test_digest_right_password(srv):
    status, body = curl_digest(srv, "/digest/", "spy", "secret")
    assert status == 200
    env = json.loads(body)
    assert env["REMOTE_USER"] == "spy"
    assert env["AUTH_TYPE"] == "Digest"


def test_digest_hash_may_be_bytes(srv):
    status, body = curl_digest(srv, "/digest/", "bytesuser", "secret")
    assert status == 200
    assert json.loads(body)["REMOTE_USER"] == "bytesuser"


def test_digest_wrong_password(srv):
    mark = srv.log_mark()
    status, _ = curl_digest(srv, "/digest/", "spy", "wrong")
    assert status == 401
    assert_logged(srv, mark, "AH01794: user spy: password mismatch: /digest/")


def test_digest_unknown_user(srv):
    mark = srv.log_mark()
    status, _ = curl_digest(srv, "/digest/", "nobody", "x")
    assert status == 401
    assert_logged(srv, mark, "AH01790: user `nobody' in realm `Digest Area' not found: /digest/")


def test_digest_exception_is_500(srv):
    mark = srv.log_mark()
    status, _ = curl_digest(srv, "/digest/", "boom", "x")
    assert status == 500
    log = assert_logged(srv, mark,
                        f"Exception occurred processing WSGI script '{srv.apps}/auth_user.wsgi'",
                        "RuntimeError: auth-boom")
    assert re.search(r'File ".*auth_user\.wsgi", line \d+, in get_realm_hash', log), log


def test_digest_bad_type_is_500(srv):
    mark = srv.log_mark()
    status, _ = curl_digest(srv, "/digest/", "badtype", "x")
    assert status == 500
    assert_logged(srv, mark, "Digest auth provider must return None or string object")


def test_digest_hook_gets_the_realm(srv):
    clear_dump(srv, "auth_user_get_realm_hash")
    status, _ = curl_digest(srv, "/digest/", "env", "env")
    assert status == 200
    d = read_dump(srv, "auth_user_get_realm_hash")
    assert d["extra"] == {"user": "env", "realm": "Digest Area"}


# --------------------------------------------------------------------------
# Groups: Require wsgi-group + groups_for_user


@pytest.mark.parametrize("user", ["spy", "tuple", "bytes", "gen"])
def test_group_member_allowed(srv, user):
    # a list / tuple / generator of str, or bytes items
    env = app_env(get_as(srv, "/group/", user, "secret" if user == "spy" else "letmein"))
    assert env["REMOTE_USER"] == user


def test_group_without_credentials_is_challenged(srv):
    r = srv.get("/group/")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Group Area"'


def test_group_member_of_no_group_denied(srv):
    mark = srv.log_mark()
    r = get_as(srv, "/group/", "citizen", "letmein")
    # authenticated but not authorized: Apache answers 401 (not 403) and asks again
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Group Area"'
    assert_logged(srv, mark,
                  "Authorization of user 'citizen' to access '/group/' failed. "
                  "User is not a member of any groups.",
                  'AH01631: user citizen: authorization failure for "/group/"')


def test_group_not_in_required_group_denied(srv):
    mark = srv.log_mark()
    r = get_as(srv, "/group/", "outsider", "letmein")
    assert r.status == 401
    assert_logged(srv, mark,
                  "Authorization of user 'outsider' to access '/group/' failed. "
                  "User is not a member of designated groups.")


def test_group_wrong_password_rejected_before_group_check(srv):
    mark = srv.log_mark()
    assert get_as(srv, "/group/", "spy", "wrong").status == 401
    log = assert_logged(srv, mark, "AH01617: user spy")
    assert "Authorization of user" not in log


def test_group_exception_denies_not_500(srv):
    mark = srv.log_mark()
    r = get_as(srv, "/group/", "gboom", "letmein")
    assert r.status == 401
    log = assert_logged(srv, mark,
                        f"Exception occurred processing WSGI script '{srv.apps}/auth_group.wsgi'",
                        "RuntimeError: group-boom",
                        'AH01631: user gboom: authorization failure for "/group/"')
    assert re.search(r'File ".*auth_group\.wsgi", line \d+, in groups_for_user', log), log


@pytest.mark.parametrize("user,message", [
    ("gbadtype", "must be an iterable sequence of byte strings."),
    ("gbaditem", "must be an iterable sequence of byte strings."),
    ("gnonlatin", "must be an iterable sequence of byte strings, value containing "
                  "non 'latin-1' characters found"),
])
def test_group_bad_result_denies(srv, user, message):
    mark = srv.log_mark()
    r = get_as(srv, "/group/", user, "letmein")
    assert r.status == 401
    assert_logged(srv, mark, f"Groups for user returned from '{srv.apps}/auth_group.wsgi' "
                  + message,
                  f'AH01631: user {user}: authorization failure for "/group/"')


def test_group_require_any_falls_through_to_group_file(srv):
    # the wsgi-group provider denies, mod_authz_groupfile grants: RequireAny grants
    env = app_env(get_as(srv, "/anygroup/", "outsider", "letmein"))
    assert env["REMOTE_USER"] == "outsider"
    assert app_env(get_as(srv, "/anygroup/", "spy", "secret"))["REMOTE_USER"] == "spy"
    assert get_as(srv, "/anygroup/", "citizen", "letmein").status == 401


def test_group_authoritative_off_is_accepted_and_changes_nothing(srv):
    # Apache 2.4: mod_wsgi parses WSGIGroupAuthoritative but the authz provider never
    # consults it; falling through is done with <RequireAny> (above)
    assert get_as(srv, "/groupnonauth/", "outsider", "letmein").status == 401
    assert app_env(get_as(srv, "/groupnonauth/", "spy", "secret"))["REMOTE_USER"] == "spy"


# --------------------------------------------------------------------------
# Access: WSGIAccessScript + allow_access


def test_access_allowed(srv):
    env = app_env(srv.get("/acc/"))
    assert "REMOTE_USER" not in env and "AUTH_TYPE" not in env


def test_access_denied_by_host(srv):
    mark = srv.log_mark()
    # the script refuses 127.0.0.2 and allows 127.0.0.1
    r = get_from(srv, "127.0.0.2", "/acc/")
    assert r.status == 403
    assert_logged(srv, mark, "Client denied by server configuration: "
                             f"'{srv.apps}/environ.wsgi'")
    env = app_env(get_from(srv, "127.0.0.1", "/acc/"))
    assert env["REMOTE_ADDR"] == "127.0.0.1"


def test_access_false_is_403(srv):
    mark = srv.log_mark()
    r = srv.get("/acc/?deny")
    assert r.status == 403
    assert_logged(srv, mark, "Client denied by server configuration: "
                             f"'{srv.apps}/environ.wsgi'")


def test_access_none_has_no_opinion(srv):
    assert app_env(srv.get("/acc/?none"))["QUERY_STRING"] == "none"


def test_access_true_or_none_do_not_override_require(srv):
    # True (OK) and None (DECLINED) both leave mod_authz_core's decision standing
    for q in ("", "?none"):
        mark = srv.log_mark()
        assert srv.get("/accdenied/" + q).status == 403
        assert_logged(srv, mark, "AH01630: client denied by server configuration")


def test_access_exception_is_403(srv):
    mark = srv.log_mark()
    assert srv.get("/acc/?boom").status == 403
    log = assert_logged(srv, mark,
                        f"Exception occurred processing WSGI script '{srv.apps}/auth_access.wsgi'",
                        "RuntimeError: access-boom",
                        "Client denied by server configuration")
    assert re.search(r'File ".*auth_access\.wsgi", line \d+, in allow_access', log), log


def test_access_non_bool_is_403(srv):
    mark = srv.log_mark()
    assert srv.get("/acc/?badtype").status == 403
    # mod_wsgi: "Indicator of host accessibility returned from '<script>' must a boolean or
    # None." (the missing "be" may be fixed)
    assert_logged(srv, mark,
                  re.compile(r"Indicator of host accessibility returned from "
                             + re.escape(f"'{srv.apps}/auth_access.wsgi'")
                             + r" must (be )?a boolean or None\."),
                  "Client denied by server configuration")


# --------------------------------------------------------------------------
# Provider chain (AuthBasicProvider wsgi file)


def test_provider_chain_none_falls_through_to_file(srv):
    # "filer" is unknown to the script (None) and in the htpasswd file
    env = app_env(get_as(srv, "/chain/", "filer", "filepw"))
    assert env["REMOTE_USER"] == "filer"


def test_provider_chain_false_stops(srv):
    # "spy" is in both; the script says False for "filepw": the file is never asked
    mark = srv.log_mark()
    assert get_as(srv, "/chain/", "spy", "filepw").status == 401
    assert_logged(srv, mark, 'AH01617: user spy: authentication failure for "/chain/"')
    assert app_env(get_as(srv, "/chain/", "spy", "secret"))["REMOTE_USER"] == "spy"


def test_provider_chain_unknown_everywhere(srv):
    mark = srv.log_mark()
    assert get_as(srv, "/chain/", "nobody", "filepw").status == 401
    assert_logged(srv, mark, "AH01618: user nobody not found: /chain/")


def test_provider_chain_error_stops(srv):
    # AUTH_GENERAL_ERROR ends the chain with a 500 (the file provider is not asked)
    assert get_as(srv, "/chain/", "boom", "filepw").status == 500


# --------------------------------------------------------------------------
# The environ the hooks get, and where they run

# keys every hook environ has (mod_wsgi 4.9.4 Auth_environ)
HOOK_KEYS = {
    "REQUEST_METHOD", "REQUEST_URI", "QUERY_STRING", "SCRIPT_NAME", "PATH_INFO",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE", "SERVER_ADDR",
    "REMOTE_ADDR", "REMOTE_PORT", "DOCUMENT_ROOT", "HTTP_HOST",
    "mod_wsgi.process_group", "mod_wsgi.application_group", "mod_wsgi.script_reloading",
    "mod_wsgi.version", "apache.version", "wsgi.errors",
}
# keys they do not get: no request body, no credentials, no WSGI-application keys
HOOK_ABSENT = {
    "wsgi.input", "wsgi.version", "wsgi.url_scheme", "wsgi.file_wrapper",
    "HTTP_AUTHORIZATION", "REMOTE_USER", "AUTH_TYPE", "SCRIPT_FILENAME",
    "mod_wsgi.callable_object", "apache.request_rec",
}


def _check_hook_environ(srv, d, script_name, path_info):
    env, types = d["environ"], d["types"]
    assert HOOK_KEYS <= set(env), sorted(HOOK_KEYS - set(env))
    assert not (HOOK_ABSENT & set(env)), sorted(HOOK_ABSENT & set(env))
    assert d["environ_class"] == "dict"
    assert env["SCRIPT_NAME"] == script_name
    assert env["PATH_INFO"] == path_info
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(srv.port)
    assert env["HTTP_HOST"] == f"127.0.0.1:{srv.port}"
    for k, v in env.items():
        if k.isupper() and "." not in k:
            assert types[k] == "str", (k, types[k])
    # hooks run in the Apache child's main interpreter, never in a daemon process
    assert env["mod_wsgi.process_group"] == ""
    assert env["mod_wsgi.application_group"] == ""
    assert d["facts"]["mod_wsgi"]["process_group"] == ""
    assert env["mod_wsgi.script_reloading"] == 1
    assert types["mod_wsgi.version"] == "tuple" and types["apache.version"] == "tuple"
    assert d["errors_can_write"] is True
    assert {"mod_ssl.is_https", "mod_ssl.var_lookup"} <= set(d["callables"])
    return env


def test_check_password_environ(srv):
    clear_dump(srv, "auth_user_check_password")
    r = srv.post("/basic/p?q=1", body=b"hello", headers={
        **basic("env", "env"), "Content-Type": "text/plain",
        "X-Bar": "dash", "X_Foo": "underscore"})
    app = app_env(r)
    d = read_dump(srv, "auth_user_check_password")
    env = _check_hook_environ(srv, d, "/basic", "/p")
    assert d["extra"] == {"user": "env", "password": "env"}
    assert env["REQUEST_METHOD"] == "POST"
    assert env["REQUEST_URI"] == "/basic/p?q=1"
    assert env["QUERY_STRING"] == "q=1"
    assert env["CONTENT_LENGTH"] == "5" and env["CONTENT_TYPE"] == "text/plain"
    assert env["HTTP_X_BAR"] == "dash"
    # a header name with "_" is dropped (no spoofing of X-Foo as X_Foo)
    assert "HTTP_X_FOO" not in env
    if srv.mode == "daemon":
        assert d["facts"]["pid"] != app["x-process"]["pid"]
        assert app["mod_wsgi.process_group"] == "suite"
    assert d["facts"]["pid"] in srv.child_pids()


def test_groups_for_user_environ(srv):
    clear_dump(srv, "auth_group")
    app = app_env(get_as(srv, "/group/x?y=1", "env", "env"))
    d = read_dump(srv, "auth_group")
    _check_hook_environ(srv, d, "/group", "/x")
    assert d["extra"] == {"user": "env"}
    if srv.mode == "daemon":
        assert d["facts"]["pid"] != app["x-process"]["pid"]


def test_allow_access_environ(srv):
    clear_dump(srv, "auth_access")
    app = app_env(srv.get("/acc/x?env"))
    d = read_dump(srv, "auth_access")
    env = _check_hook_environ(srv, d, "/acc", "/x")
    # host: the client address (HostnameLookups Off)
    assert d["extra"] == {"host": "127.0.0.1"}
    assert env["QUERY_STRING"] == "env"
    if srv.mode == "daemon":
        assert d["facts"]["pid"] != app["x-process"]["pid"]


def test_application_group_option(srv):
    clear_dump(srv, "auth_user_check_password")
    app_env(get_as(srv, "/appgroup/", "env", "env"))
    d = read_dump(srv, "auth_user_check_password")
    assert d["environ"]["mod_wsgi.application_group"] == "authers"
    assert d["facts"]["mod_wsgi"]["application_group"] == "authers"
    assert d["facts"]["mod_wsgi"]["process_group"] == ""


def test_pass_apache_request_reaches_the_hook(srv):
    # the hook runs in the Apache child, so even with a daemon group it gets the capsule
    clear_dump(srv, "auth_user_check_password")
    app = app_env(get_as(srv, "/pass/", "env", "env"))
    d = read_dump(srv, "auth_user_check_password")
    assert d["types"].get("apache.request_rec") == "PyCapsule"
    if srv.mode == "daemon":
        assert "apache.request_rec" not in app
    else:
        assert app["x-types"]["apache.request_rec"] == "PyCapsule"


# --------------------------------------------------------------------------
# Script loading: reloading, missing script, failing import, missing hooks


def test_script_reloaded_when_touched(srv):
    path = srv.var / "auth_reload.wsgi"
    path.write_text(RELOAD_V1)
    os.utime(path, (time.time() - 20, time.time() - 20))
    with srv.keepalive() as conn:  # one Apache child
        assert conn.get("/reload/", headers=basic("u", "one")).status == 200
        assert conn.get("/reload/", headers=basic("u", "two")).status == 401
        path.write_text(RELOAD_V2)
        os.utime(path, (time.time(), time.time()))
        assert conn.get("/reload/", headers=basic("u", "two")).status == 200
        assert conn.get("/reload/", headers=basic("u", "one")).status == 401
    # every child sees the new version
    for _ in range(4):
        assert get_as(srv, "/reload/", "u", "two").status == 200
    path.write_text(RELOAD_V1)
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert get_as(srv, "/reload/", "u", "one").status == 200


def test_missing_script_is_500(srv):
    mark = srv.log_mark()
    assert get_as(srv, "/missing/", "spy", "secret").status == 500
    assert_logged(srv, mark, f"'{srv.apps}/auth_does_not_exist.wsgi'", "No such file or directory")


def test_script_import_error_is_500(srv):
    for _ in range(2):  # not cached: each request tries again
        mark = srv.log_mark()
        assert get_as(srv, "/broken/", "spy", "secret").status == 500
        assert_logged(srv, mark, f"'{srv.apps}/auth_broken.wsgi'",
                      "ImportError: auth-broken-import")


def test_script_without_check_password_is_500(srv):
    mark = srv.log_mark()
    assert get_as(srv, "/nohooks/", "spy", "secret").status == 500
    assert_logged(srv, mark, f"Target WSGI user authentication script '{srv.apps}/"
                             "auth_nohooks.wsgi' does not provide 'Basic' auth provider.")


def test_provider_without_script_is_500(srv):
    mark = srv.log_mark()
    assert get_as(srv, "/noscript/", "spy", "secret").status == 500
    assert_logged(srv, mark, "Location of WSGI user authentication script not provided.")


def test_access_script_missing_or_without_hook_is_403(srv):
    mark = srv.log_mark()
    assert srv.get("/accmissing/").status == 403
    assert_logged(srv, mark, f"'{srv.apps}/auth_does_not_exist.wsgi'",
                  "Client denied by server configuration")
    mark = srv.log_mark()
    assert srv.get("/accnohooks/").status == 403
    assert_logged(srv, mark, f"Target WSGI host access script '{srv.apps}/auth_nohooks.wsgi' "
                             "does not provide host validator.")


def test_group_script_without_hook_denies(srv):
    mark = srv.log_mark()
    assert get_as(srv, "/groupnohooks/", "spy", "secret").status == 401
    assert_logged(srv, mark, f"Target WSGI group authentication script '{srv.apps}/"
                             "auth_nohooks.wsgi' does not provide group provider.")


# --------------------------------------------------------------------------
# Server-level shapes: WSGIRestrictEmbedded, .htaccess, directive syntax

RESTRICTED = """
WSGIRestrictEmbedded On
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess suite processes=1 threads=2
WSGIProcessGroup suite
WSGIScriptAlias /basic {apps}/environ.wsgi
WSGIScriptAlias /acc {apps}/environ.wsgi
<Location /basic>
    AuthName "Basic Area"
""" + BASIC + """
    Require valid-user
</Location>
<Location /acc>
    WSGIAccessScript {apps}/auth_access.wsgi
</Location>
"""


def test_hooks_run_with_restrict_embedded(make_server):
    # WSGIRestrictEmbedded On forbids embedded *applications*; the hooks still run in
    # the Apache children
    srv = make_server(RESTRICTED, name="auth-restricted", load_modules=AUTH_MODULES)
    env = app_env(get_as(srv, "/basic/", "spy", "secret"))
    assert env["REMOTE_USER"] == "spy" and env["mod_wsgi.process_group"] == "suite"
    assert get_as(srv, "/basic/", "spy", "wrong").status == 401
    assert srv.get("/acc/?deny").status == 403
    assert srv.get("/acc/").status == 200


def test_htaccess_auth_config(make_server):
    config = """
Alias /ht {root}/htdocs/ht
<Directory {root}/htdocs/ht>
    AllowOverride AuthConfig
    Options +ExecCGI
    AddHandler wsgi-script .wsgi
</Directory>
"""
    srv = make_server(config, name="auth-htaccess", load_modules=AUTH_MODULES, start=False)
    ht = srv.root / "htdocs" / "ht"
    ht.mkdir()
    shutil.copy(srv.apps / "environ.wsgi", ht / "e.wsgi")
    (ht / ".htaccess").write_text(
        "AuthType Basic\nAuthName HT\nAuthBasicProvider wsgi\n"
        f"WSGIAuthUserScript {srv.apps}/auth_user.wsgi\nRequire valid-user\n")
    os.chmod(ht, 0o755)
    for f in ht.iterdir():
        os.chmod(f, 0o644)
    srv.start()
    assert srv.get("/ht/e.wsgi").status == 401
    assert get_as(srv, "/ht/e.wsgi", "spy", "wrong").status == 401
    assert app_env(get_as(srv, "/ht/e.wsgi", "spy", "secret"))["REMOTE_USER"] == "spy"


@pytest.mark.parametrize("directive", ["WSGIAuthUserScript", "WSGIAuthGroupScript",
                                       "WSGIAccessScript"])
def test_script_directives_not_allowed_at_server_level(rwsgi_path, directive):
    # OR_AUTHCFG: <Directory>/<Location>/<Files> and .htaccess (AllowOverride AuthConfig)
    s = ApacheServer(rwsgi_path, config=f"{directive} {{apps}}/auth_user.wsgi\n",
                     name="auth-syntax", load_modules=AUTH_MODULES)
    try:
        ok, out = s.configtest()
    finally:
        s.stop()
    assert not ok
    assert f"{directive} not allowed here" in out


@pytest.mark.parametrize("line,message", [
    ("WSGIAuthUserScript", "Location of auth user script not supplied."),
    ("WSGIAuthUserScript {apps}/auth_user.wsgi process-group=x",
     "Invalid option to WSGI auth user script definition."),
    ("WSGIAuthUserScript {apps}/auth_user.wsgi application-group=",
     "Invalid name for WSGI application group."),
    ("WSGIAuthGroupScript {apps}/auth_group.wsgi application-group=x extra",
     "Invalid option to WSGI auth group script definition."),
    ("WSGIAccessScript {apps}/auth_access.wsgi foo=bar",
     "Invalid option to WSGI access script definition."),
    ("WSGIGroupAuthoritative maybe", "WSGIGroupAuthoritative must be one of: Off | On"),
])
def test_directive_syntax_errors(rwsgi_path, line, message):
    s = ApacheServer(rwsgi_path, config=f"<Location /x>\n{line}\n</Location>\n",
                     name="auth-syntax", load_modules=AUTH_MODULES)
    try:
        ok, out = s.configtest()
    finally:
        s.stop()
    assert not ok
    assert message in out, out


@pytest.mark.rwsgi_specific(
    reason="mod_wsgi 4.9.4 only registers WSGIUserAuthoritative when built for Apache 2.2 "
           "(no authn provider API): on 2.4 the configtest fails with \"Invalid command "
           "'WSGIUserAuthoritative'\". rwsgi accepts it (On|Off) and it changes nothing: "
           "falling through is the provider chain's job (None -> next provider)")
def test_user_authoritative_accepted_and_inert(make_server):
    config = """
WSGIScriptAlias /chain {apps}/environ.wsgi
<Location /chain>
    AuthType Basic
    AuthName "Chain"
    AuthBasicProvider wsgi file
    AuthUserFile {apps}/auth_users.htpasswd
    WSGIAuthUserScript {apps}/auth_user.wsgi
    WSGIUserAuthoritative Off
    Require valid-user
</Location>
"""
    srv = make_server(config, name="auth-userauth", load_modules=AUTH_MODULES)
    assert app_env(get_as(srv, "/chain/", "filer", "filepw"))["REMOTE_USER"] == "filer"
    assert get_as(srv, "/chain/", "spy", "filepw").status == 401
    assert app_env(get_as(srv, "/chain/", "spy", "secret"))["REMOTE_USER"] == "spy"
