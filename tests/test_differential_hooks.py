"""Differential tests for authentication, access, dispatch and handler scripts and the trusted
proxy headers: Debian's mod_wsgi 4.9.4 and the module under test serve the same
configuration side by side in one run, in both modes, and every request must get the same
status and the same application-visible facts (REMOTE_USER, AUTH_TYPE, the process and
application group, the callable, SCRIPT_FILENAME, REMOTE_ADDR, wsgi.url_scheme, the
forwarded headers left in the environ).

The behaviours themselves are specified in test_auth_scripts.py, test_dispatch_handler.py
and test_proxy_headers.py (which also cover what 4.9.4 gets wrong and mod_wsgi 6 fixed);
this file shows the two modules agree on the cases where 4.9.4 is right. With
RWSGI_TEST_MODULE=modwsgi it compares mod_wsgi with itself.
"""
import json

import pytest

import harness
import test_auth_scripts as auth
import test_dispatch_handler as dispatch
from conftest import MODES, in_mode
from harness import ApacheServer
from test_proxy_headers import fetch

pytestmark = pytest.mark.skipif(
    not __import__("os").path.exists(harness.MODWSGI_PATH),
    reason="Debian's mod_wsgi (libapache2-mod-wsgi-py3) is the reference")

PROXY = """
WSGIScriptAlias /p {apps}/proxy_environ.wsgi
<Location /p/t>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host X-Real-IP
    WSGITrustedProxies 127.0.0.1 10.0.0.0/8
</Location>
<Location /p/any>
    WSGITrustedProxyHeaders X-Real-IP X-Forwarded-Scheme
</Location>
"""

HANDLER = """
WSGIHandlerScript xyz-handler {apps}/handler_script.wsgi
Alias /files {apps}
<Location /files>
    AddHandler xyz-handler .xyz
</Location>
"""

# Keys of the application's environ both modules must agree on (when present in either).
FACTS = ("REMOTE_USER", "AUTH_TYPE", "REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST",
         "mod_wsgi.process_group", "mod_wsgi.application_group", "mod_wsgi.callable_object",
         "mod_wsgi.handler_script", "SCRIPT_NAME", "PATH_INFO", "HTTP_X_FORWARDED_FOR",
         "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_REAL_IP",
         "HTTP_X_FORWARDED_SCHEME", "HTTP_X_CLIENT_IP")


def _start(module, config, name, mode):
    srv = ApacheServer(module, config=in_mode(config, mode), name=name,
                       load_modules=auth.AUTH_MODULES)
    (srv.var / "auth_reload.wsgi").write_text(auth.RELOAD_V1)
    (srv.var / "dispatch_reload.wsgi").write_text(dispatch.DISPATCH_RELOAD_V1)
    (srv.var / "ddir").mkdir()
    (srv.var / "ddir" / "app.wsgi").write_bytes((srv.apps / "dispatch_app.wsgi").read_bytes())
    for p in ((srv.var / "ddir"),):
        p.chmod(0o755)
    for p in (srv.var / "auth_reload.wsgi", srv.var / "dispatch_reload.wsgi",
              srv.var / "ddir" / "app.wsgi"):
        p.chmod(0o644)
    try:
        srv.start()
    except BaseException:
        srv.stop()
        raise
    return srv


@pytest.fixture(scope="module", params=MODES)
def pair(request, rwsgi_path):
    # The dispatch configuration declares its own daemon groups (alpha, beta): it runs as
    # written in both modes; the other sites follow the mode.
    config = in_mode(auth.CONFIG + PROXY + HANDLER, request.param) + dispatch.DISPATCH_CONFIG
    servers = []
    try:
        for module, name in ((harness.MODWSGI_PATH, "ref"), (rwsgi_path, "dut")):
            servers.append(_start(module, config, f"diffhooks-{name}-{request.param}", "embedded"))
        yield servers
    finally:
        for s in servers:
            s.stop(wait=False)


def normal(value, srv):
    """The server's own port and root read the same for both servers."""
    if isinstance(value, str):
        return value.replace(str(srv.port), "PORT").replace(str(srv.root), "ROOT")
    if isinstance(value, dict):
        return {k: normal(v, srv) for k, v in value.items()}
    return value


def facts(r, srv):
    """Status, and the application-visible facts when the app answered with JSON."""
    if r.status != 200:
        return r.status, None
    try:
        env = json.loads(r.body)
    except ValueError:
        return r.status, r.body
    if "callable" in env:  # dispatch_app / handler_script report what ran, and where
        return r.status, normal({k: v for k, v in env.items() if k not in ("pid", "calls")}, srv)
    env = env.get("environ", env)
    return r.status, normal({k: env.get(k) for k in FACTS if k in env}, srv)


def same(pair, send):
    ref, dut = (facts(send(s), s) for s in pair)
    assert dut == ref, f"mod_wsgi 4.9.4: {ref}\nmodule under test: {dut}"


AUTH_CASES = [
    ("/basic/p", ("spy", "secret")),
    ("/basic/p", ("spy", "wrong")),
    ("/basic/p", ("nobody", "x")),
    ("/basic/p", ("rename", "x")),
    ("/basic/p", ("boom", "x")),
    ("/basic/p", None),
    ("/group/p", ("spy", "letmein")),
    ("/group/p", ("outsider", "letmein")),
    ("/group/p", ("citizen", "letmein")),
    ("/group/p", ("gboom", "letmein")),
    ("/anygroup/p", ("outsider", "letmein")),
    ("/chain/p", ("nobody", "x")),
    ("/appgroup/p", ("spy", "secret")),
    ("/missing/p", ("spy", "secret")),
    ("/nohooks/p", ("spy", "secret")),
    ("/acc/p", None),
    ("/acc/p?deny", None),
    ("/acc/p?none", None),
    ("/acc/p?boom", None),
    ("/accdenied/p", None),
]


@pytest.mark.parametrize("path,cred", AUTH_CASES,
                         ids=[f"{p}-{c[0] if c else 'anon'}" for p, c in AUTH_CASES])
def test_auth_and_access_scripts(pair, path, cred):
    headers = auth.basic(*cred) if cred else {}
    same(pair, lambda s: s.get(path, headers=headers))


@pytest.mark.parametrize("user,password", [("spy", "secret"), ("spy", "wrong"),
                                           ("nobody", "x")])
def test_digest(pair, user, password):
    ref, dut = (auth.curl_digest(s, "/digest/p", user, password)[0] for s in pair)
    assert dut == ref


def test_access_from_another_address(pair):
    same(pair, lambda s: auth.get_from(s, "127.0.0.2", "/acc/p"))


DISPATCH_CASES = [
    "/d/?pg=alpha", "/d/?pg=beta", "/d/?ag=other-group", "/d/?co=other",
    "/d/?pg=%25%7BGLOBAL%7D", "/dopt/", "/dopt/?pg=beta&ag=a2&co=application",
    "/dwp/", "/dloc/", "/ddir/", "/dnh/", "/dbroken/", "/dmissing/", "/d/?pg=nosuch",
    "/d/?raise=process_group",
]


@pytest.mark.parametrize("path", DISPATCH_CASES)
def test_dispatch_script(pair, path):
    same(pair, lambda s: s.get(path))


@pytest.mark.parametrize("path", ["/files/handler_page.xyz", "/files/handler_page.xyz/extra?q=1",
                                  "/files/missing.xyz", "/dfiles/handler_page.xyz"])
def test_handler_script(pair, path):
    same(pair, lambda s: s.get(path))


PROXY_CASES = [
    ("127.0.0.1", "/p/t/x", [("X-Forwarded-For", "203.0.113.7, 10.1.1.1"),
                             ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "front"),
                             ("X-Client-IP", "192.0.2.9")]),
    ("127.0.0.2", "/p/t/x", [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"),
                             ("X-Real-IP", "198.51.100.2"), ("X-Forwarded-Host", "evil")]),
    ("127.0.0.1", "/p/t/x", [("X-Real-IP", "198.51.100.3")]),
    ("127.0.0.2", "/p/any/x", [("X-Real-IP", "198.51.100.4"), ("X-Forwarded-Scheme", "https"),
                               ("X-Client-IP", "192.0.2.8")]),
    ("127.0.0.1", "/p/x", [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]),
]


@pytest.mark.parametrize("src,path,headers", PROXY_CASES,
                         ids=[f"{s}{p}-{i}" for i, (s, p, _) in enumerate(PROXY_CASES)])
def test_trusted_proxy_headers(pair, src, path, headers):
    ref, dut = (normal(fetch(s, path, headers, src=src), s) for s in pair)
    # PATH_TRANSLATED: left out by rwsgi on purpose (test_differential.ENVIRON_LEFT_OUT)
    keys = (set(ref) | set(dut)) - {"SERVER_SOFTWARE", "REMOTE_PORT", "PATH_TRANSLATED"}
    assert {k: dut.get(k) for k in keys} == {k: ref.get(k) for k in keys}
