"""WSGITrustedProxyHeaders / WSGITrustedProxies with mod_wsgi 6.x semantics.

Reference: mod_wsgi 6.x (6.0.5 / 6.1.1 src/server/wsgi_environ.c:
wsgi_process_proxy_headers, its header registry and wsgi_process_forwarded_for). In short:

* Categories and their synonyms: client (X-Forwarded-For, X-Client-IP, X-Real-IP ->
  REMOTE_ADDR), host (X-Forwarded-Host, X-Host -> HTTP_HOST), server (X-Forwarded-Server ->
  SERVER_NAME), port (X-Forwarded-Port -> SERVER_PORT), script name (X-Script-Name,
  X-Forwarded-Script-Name -> SCRIPT_NAME + mod_wsgi.mount_point), scheme (X-Forwarded-Proto,
  X-Forwarded-Scheme, X-Scheme = http/https; X-Forwarded-HTTPS, X-Forwarded-SSL, X-HTTPS =
  on/off, true/false, 1/0 -> wsgi.url_scheme; the HTTPS key never reaches the app).
* For every category with a declared header, every synonym is removed from the environ
  except the declared header that was applied; from an untrusted peer nothing is applied, so
  all of them go. Categories with nothing declared are left alone.
* Declared synonyms are applied in directive order; the last one present wins and is kept.
* No WSGITrustedProxies: every peer is trusted and X-Forwarded-For's first element wins.
  With it: the X-Forwarded-For chain is walked right to left over trusted proxies, empty
  elements skipped. Values are otherwise used verbatim (no validation).
* Each directive in a narrower context replaces (not extends) the inherited list; repeating
  it in one context appends.

The untrusted peer is a second loopback address: the client binds 127.0.0.2 before
connecting to 127.0.0.1 (Linux routes all of 127/8 on lo). The harness has no option for a
source address, so this file opens its own sockets and parses with harness.parse_response.

Module flavours (told apart by the Server banner in the error log): cases marked
fixed_in_6 are the 6.x fixes and are strict xfails on mod_wsgi 4.x (Debian's 4.9.4,
RWSGI_TEST_MODULE=modwsgi); rwsgi_only cases are strict xfails on any mod_wsgi.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import harness
from conftest import MODES, in_mode
from harness import ApacheServer, parse_response, start_server

TRUSTED = "127.0.0.1"  # the address WSGITrustedProxies names in most locations
UNTRUSTED = "127.0.0.2"

# header -> (category, value that takes effect, environ keys it changes, decoy value)
# The decoy is sent for the header when it is *not* the declared one: were it applied,
# it would change the same keys differently.
HEADERS = {
    "X-Forwarded-For": ("client", "203.0.113.7", {"REMOTE_ADDR": "203.0.113.7"}, "192.0.2.61"),
    "X-Client-IP": ("client", "203.0.113.8", {"REMOTE_ADDR": "203.0.113.8"}, "192.0.2.62"),
    "X-Real-IP": ("client", "203.0.113.9", {"REMOTE_ADDR": "203.0.113.9"}, "192.0.2.63"),
    "X-Forwarded-Host": ("host", "front.example:8443", {"HTTP_HOST": "front.example:8443"},
                         "decoy-fh.example"),
    "X-Host": ("host", "xhost.example", {"HTTP_HOST": "xhost.example"}, "decoy-xh.example"),
    "X-Forwarded-Server": ("server", "front.example", {"SERVER_NAME": "front.example"},
                           "decoy-fs.example"),
    "X-Forwarded-Port": ("port", "8443", {"SERVER_PORT": "8443"}, "9999"),
    "X-Script-Name": ("script", "/mount", {"SCRIPT_NAME": "/mount",
                                           "mod_wsgi.mount_point": "/mount"}, "/decoy-sn"),
    "X-Forwarded-Script-Name": ("script", "/fmount", {"SCRIPT_NAME": "/fmount",
                                                      "mod_wsgi.mount_point": "/fmount"},
                                "/decoy-fsn"),
    "X-Forwarded-Proto": ("scheme", "https", {"wsgi.url_scheme": "https"}, "http"),
    "X-Forwarded-Scheme": ("scheme", "https", {"wsgi.url_scheme": "https"}, "http"),
    "X-Scheme": ("scheme", "https", {"wsgi.url_scheme": "https"}, "http"),
    "X-Forwarded-HTTPS": ("scheme", "on", {"wsgi.url_scheme": "https"}, "off"),
    "X-Forwarded-SSL": ("scheme", "on", {"wsgi.url_scheme": "https"}, "off"),
    "X-HTTPS": ("scheme", "1", {"wsgi.url_scheme": "https"}, "0"),
}
NAMES = list(HEADERS)


def env_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def slug(header: str) -> str:
    return header.lower()


def synonyms(header: str) -> list:
    cat = HEADERS[header][0]
    return [h for h in NAMES if HEADERS[h][0] == cat]


# --------------------------------------------------------------------------
# client with a chosen source address


def fetch(srv, path, headers=(), src=TRUSTED, port=None, tls=False, status=200):
    """GET `path` from source address `src`; returns the app's JSON (the environ subset)."""
    data = srv.build_request("GET", path, list(headers))
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(10)
    try:
        raw.bind((src, 0))
        raw.connect((srv.host, port or srv.port))
        sock = raw
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(raw)
        sock.sendall(data)
        out = bytearray()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        raw.close()
    r = parse_response(bytes(out))
    assert r.status == status, (r, srv.error_log()[-3000:])
    return r.json() if status == 200 else r


def baseline(srv, src, script_name="/p"):
    """What the environ says with no proxy header applied."""
    return {
        "REMOTE_ADDR": src,
        "HTTP_HOST": f"127.0.0.1:{srv.port}",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(srv.port),
        "SCRIPT_NAME": script_name,
        "wsgi.url_scheme": "http",
        "mod_wsgi.mount_point": None,
    }


def check(env, expected):
    got = {k: env.get(k) for k in expected}
    assert got == expected, env


# --------------------------------------------------------------------------
# module flavour: 6.x fixes are xfail on mod_wsgi 4.x


_BANNER = re.compile(r"\b(mod_wsgi|rwsgi)/(\d+)\.(\d+)")


def flavour(srv) -> "tuple[str, tuple[int, int]]":
    m = None
    for m in _BANNER.finditer(srv.error_log()):
        pass
    if m is None:
        return ("unknown", (0, 0))
    return (m.group(1), (int(m.group(2)), int(m.group(3))))


def fixed_in_6(request, srv, why: str):
    """The case below is a mod_wsgi 6.x fix: a strict xfail on mod_wsgi 4.x."""
    name, version = flavour(srv)
    if name == "mod_wsgi" and version < (6, 0):
        request.node.add_marker(pytest.mark.xfail(reason="fixed in mod_wsgi 6.x: " + why,
                                                  strict=True))


def rwsgi_only(request, srv, why: str):
    """rwsgi deliberately differs from every mod_wsgi here: a strict xfail on mod_wsgi."""
    if flavour(srv)[0] == "mod_wsgi":
        request.node.add_marker(pytest.mark.xfail(reason="mod_wsgi differs: " + why,
                                                  strict=True))


# --------------------------------------------------------------------------
# the main site: one location per case

PROXIES = "WSGITrustedProxies 127.0.0.1"


def _site() -> str:
    parts = ["WSGIScriptAlias /p {apps}/proxy_environ.wsgi"]
    for h in NAMES:
        # one declared header, 127.0.0.1 trusted
        parts.append(f"<Location /p/h/{slug(h)}>\n    WSGITrustedProxyHeaders {h}\n"
                     f"    {PROXIES}\n</Location>")
        # one declared header, no WSGITrustedProxies: every peer is trusted
        parts.append(f"<Location /p/any/{slug(h)}>\n    WSGITrustedProxyHeaders {h}\n"
                     "</Location>")
    parts.append("""
<Location /p/chain>
    WSGITrustedProxyHeaders X-Forwarded-For
    WSGITrustedProxies 127.0.0.1 10.0.0.0/8
</Location>
<Location /p/peer2>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto
    WSGITrustedProxies 127.0.0.2
</Location>
<Location /p/multi>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto
    WSGITrustedProxies 192.0.2.1 127.0.0.2
</Location>
<Location /p/cidr>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto
    WSGITrustedProxies 127.0.0.0/24
</Location>
<Location /p/mask>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto
    WSGITrustedProxies 127.0.0.0/255.255.255.0
</Location>
<Location /p/partial>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto
    WSGITrustedProxies 127.0
</Location>
<Location /p/order-ps>
    WSGITrustedProxyHeaders X-Forwarded-Proto X-Forwarded-SSL
    WSGITrustedProxies 127.0.0.1
</Location>
<Location /p/order-sp>
    WSGITrustedProxyHeaders X-Forwarded-SSL X-Forwarded-Proto
    WSGITrustedProxies 127.0.0.1
</Location>
<Location /p/client-all>
    WSGITrustedProxyHeaders X-Forwarded-For X-Client-IP X-Real-IP
    WSGITrustedProxies 127.0.0.1
</Location>
<Location /p/setenv>
    SetEnv HTTPS On
    WSGITrustedProxyHeaders X-Forwarded-Proto
    WSGITrustedProxies 127.0.0.1
</Location>
<Location /p/lower>
    WSGITrustedProxyHeaders x-forwarded-proto "X-Real-Ip"
    WSGITrustedProxies 127.0.0.1
</Location>
<Location /p/unknown>
    WSGITrustedProxyHeaders X-Foo Forwarded
    WSGITrustedProxies 127.0.0.1
</Location>
<Location /p/all>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Host X-Forwarded-Server X-Forwarded-Port X-Forwarded-Script-Name X-Forwarded-Proto
    WSGITrustedProxies 127.0.0.1
</Location>
""")
    return "\n".join(parts)


SITE = _site()


@pytest.fixture(scope="module", params=MODES)
def srv(request, rwsgi_path):
    s = start_server(rwsgi_path, in_mode(SITE, request.param), name=f"proxy-{request.param}",
                     load_modules=("env",))
    s.mode = request.param
    yield s
    s.stop(wait=False)


def all_headers(declared=None, omit=()):
    """Every known proxy header: the declared one with its effective value, the rest decoys."""
    out = []
    for h in NAMES:
        if h in omit:
            continue
        out.append((h, HEADERS[h][1] if h == declared else HEADERS[h][3]))
    return out


# --------------------------------------------------------------------------
# every header x trusted / untrusted peer


def test_nothing_declared_passes_everything_through(srv):
    env = fetch(srv, "/p/none", all_headers())
    check(env, baseline(srv, TRUSTED))
    for h in NAMES:
        assert env[env_key(h)] == HEADERS[h][3], h


@pytest.mark.parametrize("header", NAMES)
def test_declared_header_trusted_peer(srv, header):
    """Applied; the declared header stays; its synonyms are stripped; other categories
    (not declared) pass through untouched."""
    env = fetch(srv, f"/p/h/{slug(header)}", all_headers(declared=header), src=TRUSTED)
    expected = baseline(srv, TRUSTED)
    expected.update(HEADERS[header][2])
    check(env, expected)
    assert env[env_key(header)] == HEADERS[header][1]
    for h in synonyms(header):
        if h != header:
            assert env_key(h) not in env, h
    for h in NAMES:
        if h not in synonyms(header):
            assert env[env_key(h)] == HEADERS[h][3], h


@pytest.mark.parametrize("header", NAMES)
def test_declared_header_untrusted_peer(request, srv, header):
    """CVE-2022-2255 class: nothing applied, the declared header and every synonym gone."""
    if HEADERS[header][0] in ("server", "port"):
        fixed_in_6(request, srv, "4.x keeps X-Forwarded-Server/-Port from an untrusted peer")
    env = fetch(srv, f"/p/h/{slug(header)}", all_headers(declared=header), src=UNTRUSTED)
    check(env, baseline(srv, UNTRUSTED))
    for h in synonyms(header):
        assert env_key(h) not in env, h
    for h in NAMES:
        if h not in synonyms(header):
            assert env[env_key(h)] == HEADERS[h][3], h


@pytest.mark.parametrize("header", NAMES)
def test_declared_header_absent_synonyms_stripped(srv, header):
    """Trusted peer, the declared header not sent: no change, spoofed synonyms still gone."""
    env = fetch(srv, f"/p/h/{slug(header)}", all_headers(omit=(header,)), src=TRUSTED)
    check(env, baseline(srv, TRUSTED))
    for h in synonyms(header):
        assert env_key(h) not in env, h


@pytest.mark.parametrize("src", [TRUSTED, UNTRUSTED], ids=["peer1", "peer2"])
@pytest.mark.parametrize("header", NAMES)
def test_no_trusted_proxies_trusts_every_peer(srv, header, src):
    env = fetch(srv, f"/p/any/{slug(header)}", all_headers(declared=header), src=src)
    expected = baseline(srv, src)
    expected.update(HEADERS[header][2])
    check(env, expected)
    assert env[env_key(header)] == HEADERS[header][1]
    for h in synonyms(header):
        if h != header:
            assert env_key(h) not in env, h


SEVERAL = [("X-Forwarded-For", "203.0.113.7, 10.9.9.9"),
           ("X-Forwarded-Host", "shop.example"),
           ("X-Forwarded-Server", "edge.example"),
           ("X-Forwarded-Port", "443"),
           ("X-Forwarded-Script-Name", "/shop"),
           ("X-Forwarded-Proto", "https"),
           ("X-Real-IP", "192.0.2.1"), ("X-Host", "evil.example"), ("X-Scheme", "http"),
           ("X-Script-Name", "/evil")]


def test_several_categories_trusted(srv):
    env = fetch(srv, "/p/all/x", SEVERAL, src=TRUSTED)
    check(env, {"REMOTE_ADDR": "10.9.9.9",  # 10.9.9.9 is not a trusted proxy here
                "HTTP_X_FORWARDED_FOR": "10.9.9.9",
                "HTTP_HOST": "shop.example", "SERVER_NAME": "edge.example",
                "SERVER_PORT": "443", "SCRIPT_NAME": "/shop",
                "mod_wsgi.mount_point": "/shop", "mod_wsgi.script_name": "/p",
                "PATH_INFO": "/all/x", "wsgi.url_scheme": "https",
                "HTTP_X_REAL_IP": None, "HTTP_X_HOST": None, "HTTP_X_SCHEME": None,
                "HTTP_X_SCRIPT_NAME": None})


def test_several_categories_untrusted(request, srv):
    fixed_in_6(request, srv, "4.x keeps X-Forwarded-Server/-Port from an untrusted peer")
    env = fetch(srv, "/p/all/x", SEVERAL, src=UNTRUSTED)
    check(env, baseline(srv, UNTRUSTED))
    for h, _ in SEVERAL:
        assert env_key(h) not in env, h


# --------------------------------------------------------------------------
# X-Forwarded-For chains (WSGITrustedProxies 127.0.0.1 10.0.0.0/8, peer 127.0.0.1)

CHAINS = [
    # (id, header value(s), REMOTE_ADDR, rewritten HTTP_X_FORWARDED_FOR, fixed in 6.x)
    ("one", "203.0.113.7", "203.0.113.7", "203.0.113.7", False),
    ("skip-trusted", "198.51.100.1, 203.0.113.9, 10.1.1.1, 127.0.0.1", "203.0.113.9",
     "203.0.113.9, 10.1.1.1, 127.0.0.1", False),
    ("one-trusted-hop", "203.0.113.9, 10.1.1.1", "203.0.113.9", "203.0.113.9, 10.1.1.1", False),
    ("all-trusted", "10.2.2.2, 10.1.1.1", "10.2.2.2", "10.2.2.2, 10.1.1.1", False),
    ("only-trusted", "10.1.1.1", "10.1.1.1", "10.1.1.1", False),
    ("none-trusted", "198.51.100.1, 203.0.113.9", "203.0.113.9", "203.0.113.9", False),
    ("spaces", "  203.0.113.9 ,   10.1.1.1  ", "203.0.113.9", "203.0.113.9, 10.1.1.1", False),
    ("two-lines", ["203.0.113.9", "10.1.1.1"], "203.0.113.9", "203.0.113.9, 10.1.1.1", False),
    ("empty-elements", "198.51.100.1,,  ,10.1.1.1 ,", "198.51.100.1",
     "198.51.100.1, 10.1.1.1", True),
    ("empty-before-trusted", ",10.1.1.1", "10.1.1.1", "10.1.1.1", True),
    ("only-empty-elements", ", , ", TRUSTED, ", ,", True),
    ("empty-value", "", TRUSTED, "", False),
    # a non-IP element stops the walk; when trusted hops follow it, it becomes REMOTE_ADDR
    ("invalid-stops-walk", "198.51.100.1, bad!ip, 10.1.1.1", "bad!ip", "bad!ip, 10.1.1.1",
     False),
    ("invalid-last", "198.51.100.1, bad!ip", "bad!ip", "bad!ip", False),
]


@pytest.mark.parametrize("value,remote,xff,fixed", [c[1:] for c in CHAINS],
                         ids=[c[0] for c in CHAINS])
def test_forwarded_for_chain(request, srv, value, remote, xff, fixed):
    if fixed:
        fixed_in_6(request, srv, "empty X-Forwarded-For elements are skipped (RFC 9110 5.6.1)")
    values = value if isinstance(value, list) else [value]
    env = fetch(srv, "/p/chain/x", [("X-Forwarded-For", v) for v in values], src=TRUSTED)
    assert env["REMOTE_ADDR"] == remote
    assert env["HTTP_X_FORWARDED_FOR"] == xff


def test_forwarded_for_chain_untrusted_peer(srv):
    env = fetch(srv, "/p/chain/x", [("X-Forwarded-For", "203.0.113.9, 10.1.1.1"),
                                    ("X-Real-IP", "192.0.2.1")], src=UNTRUSTED)
    assert env["REMOTE_ADDR"] == UNTRUSTED
    assert "HTTP_X_FORWARDED_FOR" not in env and "HTTP_X_REAL_IP" not in env


NOLIST = [
    # without WSGITrustedProxies: the first non-empty element, the header kept verbatim
    ("first", "198.51.100.1, 203.0.113.9", "198.51.100.1", "198.51.100.1, 203.0.113.9", False),
    ("spaces", "   198.51.100.1   , 203.0.113.9", "198.51.100.1",
     "198.51.100.1   , 203.0.113.9", False),
    ("leading-empty", " , ,198.51.100.1, 203.0.113.9", "198.51.100.1",
     ", ,198.51.100.1, 203.0.113.9", True),
    ("only-empty", ", ,", UNTRUSTED, ", ,", True),
    ("not-an-ip", "bad!ip, 203.0.113.9", "bad!ip", "bad!ip, 203.0.113.9", False),
]


@pytest.mark.parametrize("value,remote,xff,fixed", [c[1:] for c in NOLIST],
                         ids=[c[0] for c in NOLIST])
def test_forwarded_for_without_trusted_proxies(request, srv, value, remote, xff, fixed):
    if fixed:
        fixed_in_6(request, srv, "empty X-Forwarded-For elements are skipped (RFC 9110 5.6.1)")
    env = fetch(srv, "/p/any/x-forwarded-for/x", [("X-Forwarded-For", value)], src=UNTRUSTED)
    assert env["REMOTE_ADDR"] == remote
    assert env["HTTP_X_FORWARDED_FOR"] == xff


def test_client_synonyms_last_declared_wins(srv):
    """Every declared header present is applied in directive order; the last one applied is
    the one kept, the other synonyms (even declared ones) are removed."""
    env = fetch(srv, "/p/client-all/x", [("X-Forwarded-For", "203.0.113.7"),
                                         ("X-Client-IP", "203.0.113.8"),
                                         ("X-Real-IP", "203.0.113.9")])
    check(env, {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_REAL_IP": "203.0.113.9",
                "HTTP_X_FORWARDED_FOR": None, "HTTP_X_CLIENT_IP": None})
    env = fetch(srv, "/p/client-all/x", [("X-Forwarded-For", "203.0.113.7"),
                                         ("X-Client-IP", "203.0.113.8")])
    check(env, {"REMOTE_ADDR": "203.0.113.8", "HTTP_X_CLIENT_IP": "203.0.113.8",
                "HTTP_X_FORWARDED_FOR": None, "HTTP_X_REAL_IP": None})


# --------------------------------------------------------------------------
# WSGITrustedProxies forms

TRUST = [
    # (location, peer, X-Forwarded-For, trusted?, REMOTE_ADDR)
    ("peer2", UNTRUSTED, "203.0.113.7", True, "203.0.113.7"),
    ("peer2", TRUSTED, "203.0.113.7", False, TRUSTED),
    ("multi", UNTRUSTED, "203.0.113.7", True, "203.0.113.7"),
    ("multi", TRUSTED, "203.0.113.7", False, TRUSTED),
    ("cidr", UNTRUSTED, "203.0.113.7, 127.0.0.9", True, "203.0.113.7"),
    ("cidr", TRUSTED, "203.0.113.7", True, "203.0.113.7"),
    ("mask", UNTRUSTED, "203.0.113.7, 127.0.0.9", True, "203.0.113.7"),
    # "127.0" is the network 127.0.0.0/16 (apr_ipsubnet_create)
    ("partial", UNTRUSTED, "203.0.113.7, 127.0.200.1", True, "203.0.113.7"),
    # 127.0.0.9 is not in 127.0.0.2's list: it is the client
    ("peer2", UNTRUSTED, "203.0.113.7, 127.0.0.9", True, "127.0.0.9"),
]


@pytest.mark.parametrize("loc,src,xff,trusted,remote", TRUST,
                         ids=[f"{t[0]}-{t[1]}-{i}" for i, t in enumerate(TRUST)])
def test_trusted_proxies_forms(srv, loc, src, xff, trusted, remote):
    env = fetch(srv, f"/p/{loc}/x", [("X-Forwarded-For", xff), ("X-Forwarded-Proto", "https")],
                src=src)
    assert env["REMOTE_ADDR"] == remote
    if trusted:
        assert env["wsgi.url_scheme"] == "https"
        assert env["HTTP_X_FORWARDED_PROTO"] == "https"
        assert "HTTP_X_FORWARDED_FOR" in env
    else:
        assert env["wsgi.url_scheme"] == "http"
        assert "HTTP_X_FORWARDED_PROTO" not in env and "HTTP_X_FORWARDED_FOR" not in env


# --------------------------------------------------------------------------
# values


SCHEME_VALUES = [
    ("X-Forwarded-Proto", "https", "https"), ("X-Forwarded-Proto", "HTTPS", "https"),
    ("X-Forwarded-Proto", "http", "http"), ("X-Forwarded-Proto", "ftp", "http"),
    ("X-Forwarded-Proto", "", "http"), ("X-Forwarded-Proto", "on", "http"),
    ("X-Forwarded-Scheme", "HttpS", "https"), ("X-Scheme", "https", "https"),
    ("X-Forwarded-SSL", "on", "https"), ("X-Forwarded-SSL", "ON", "https"),
    ("X-Forwarded-SSL", "true", "https"), ("X-Forwarded-SSL", "True", "https"),
    ("X-Forwarded-SSL", "1", "https"), ("X-Forwarded-SSL", "off", "http"),
    ("X-Forwarded-SSL", "yes", "http"), ("X-Forwarded-SSL", "https", "http"),
    ("X-Forwarded-HTTPS", "TRUE", "https"), ("X-HTTPS", "On", "https"),
    ("X-HTTPS", "2", "http"),
]


@pytest.mark.parametrize("header,value,scheme", SCHEME_VALUES,
                         ids=[f"{h}={v or 'empty'}" for h, v, _ in SCHEME_VALUES])
def test_scheme_values(srv, header, value, scheme):
    """Values are case-insensitive; an unrecognised value changes nothing, and the header is
    still kept (it was the declared, applied header)."""
    env = fetch(srv, f"/p/h/{slug(header)}/x", [(header, value)])
    assert env["wsgi.url_scheme"] == scheme
    assert env[env_key(header)] == value
    assert "HTTPS" not in env


def test_scheme_two_header_lines_is_not_a_value(srv):
    env = fetch(srv, "/p/h/x-forwarded-proto/x", [("X-Forwarded-Proto", "https"),
                                                   ("X-Forwarded-Proto", "https")])
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https, https"


@pytest.mark.parametrize("loc,hdrs,scheme,kept", [
    ("order-ps", [("X-Forwarded-Proto", "https"), ("X-Forwarded-SSL", "off")], "http",
     "X-Forwarded-SSL"),
    ("order-sp", [("X-Forwarded-Proto", "https"), ("X-Forwarded-SSL", "off")], "https",
     "X-Forwarded-Proto"),
    ("order-ps", [("X-Forwarded-SSL", "on")], "https", "X-Forwarded-SSL"),
    ("order-sp", [("X-Forwarded-Proto", "https"), ("X-HTTPS", "0")], "https",
     "X-Forwarded-Proto"),
], ids=["proto-then-ssl", "ssl-then-proto", "second-only", "undeclared-ignored"])
def test_scheme_directive_order(srv, loc, hdrs, scheme, kept):
    """Two declared scheme headers both present: applied in directive order, the last
    applied wins and is the only scheme header kept."""
    env = fetch(srv, f"/p/{loc}/x", hdrs)
    assert env["wsgi.url_scheme"] == scheme
    for h in synonyms("X-Forwarded-Proto"):
        assert (env_key(h) in env) == (h == kept), h


@pytest.mark.parametrize("src,hdrs,scheme", [
    (TRUSTED, [], "https"),
    (TRUSTED, [("X-Forwarded-Proto", "http")], "http"),
    (TRUSTED, [("X-Forwarded-Proto", "ftp")], "https"),
    (UNTRUSTED, [("X-Forwarded-Proto", "http")], "https"),
], ids=["no-header", "trusted-http", "trusted-junk", "untrusted-http"])
def test_scheme_overrides_setenv_https(srv, src, hdrs, scheme):
    """A trusted `http` undoes `SetEnv HTTPS On`; HTTPS itself never reaches the app."""
    env = fetch(srv, "/p/setenv/x", hdrs, src=src)
    assert env["wsgi.url_scheme"] == scheme
    assert "HTTPS" not in env


@pytest.mark.parametrize("header,value,key", [
    ("X-Forwarded-Host", "a.example, b.example", "HTTP_HOST"),
    ("X-Forwarded-Host", "", "HTTP_HOST"),
    ("X-Host", "[2001:db8::1]:8080", "HTTP_HOST"),
    ("X-Forwarded-Server", "not a hostname!", "SERVER_NAME"),
    ("X-Forwarded-Port", "abc", "SERVER_PORT"),
    ("X-Forwarded-Port", "", "SERVER_PORT"),
    ("X-Client-IP", "not an ip", "REMOTE_ADDR"),
    ("X-Real-IP", "203.0.113.1, 203.0.113.2", "REMOTE_ADDR"),
    ("X-Script-Name", "", "SCRIPT_NAME"),
], ids=lambda v: v if isinstance(v, str) and v else "empty")
def test_values_used_verbatim(srv, header, value, key):
    """Host, server, port, script name, X-Client-IP and X-Real-IP are not validated."""
    env = fetch(srv, f"/p/h/{slug(header)}/x", [(header, value)])
    assert env[key] == value
    assert env[env_key(header)] == value


def test_script_name_not_normalised(srv):
    env = fetch(srv, "/p/h/x-script-name/a//b?q=1", [("X-Script-Name", "/mount//pt")])
    check(env, {"SCRIPT_NAME": "/mount//pt", "mod_wsgi.mount_point": "/mount//pt",
                "mod_wsgi.script_name": "/p", "PATH_INFO": "/h/x-script-name/a/b",
                "mod_wsgi.path_info": "/h/x-script-name/a/b"})


def test_host_two_header_lines(srv):
    env = fetch(srv, "/p/h/x-forwarded-host/x", [("X-Forwarded-Host", "a.example"),
                                                  ("X-Forwarded-Host", "b.example")])
    assert env["HTTP_HOST"] == "a.example, b.example"


def test_directive_header_names_case_insensitive(srv):
    env = fetch(srv, "/p/lower/x", [("X-Forwarded-Proto", "https"), ("X-Real-IP", "203.0.113.5"),
                                    ("X-Scheme", "http"), ("X-Forwarded-For", "192.0.2.9")])
    check(env, {"wsgi.url_scheme": "https", "REMOTE_ADDR": "203.0.113.5",
                "HTTP_X_SCHEME": None, "HTTP_X_FORWARDED_FOR": None})


def test_unknown_header_names_ignored(srv):
    """Names outside the registry (incl. RFC 7239 Forwarded) are accepted and do nothing."""
    hdrs = [("X-Foo", "1"), ("Forwarded", "for=203.0.113.5;proto=https"),
            ("X-Forwarded-Proto", "https")]
    env = fetch(srv, "/p/unknown/x", hdrs)
    check(env, baseline(srv, TRUSTED))
    check(env, {"HTTP_X_FOO": "1", "HTTP_FORWARDED": "for=203.0.113.5;proto=https",
                "HTTP_X_FORWARDED_PROTO": "https"})


# --------------------------------------------------------------------------
# contexts and merging

MERGE_SITE = """
WSGITrustedProxyHeaders X-Forwarded-Proto
WSGITrustedProxyHeaders X-Forwarded-Host
WSGITrustedProxies 127.0.0.1
WSGIScriptAlias /p {apps}/proxy_environ.wsgi
WSGIScriptAlias /ht {apps}/proxy_ht/proxy_environ.wsgi
<Location /p/hdr>
    WSGITrustedProxyHeaders X-Real-IP
</Location>
<Location /p/prox>
    WSGITrustedProxies 127.0.0.2
</Location>
<Location /p/off>
    WSGITrustedProxyHeaders
</Location>
<Location /p/nobody>
    WSGITrustedProxies
</Location>
<Directory {apps}/proxy_ht>
    AllowOverride FileInfo
</Directory>
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName vh.example
    WSGITrustedProxyHeaders X-Forwarded-Server
</VirtualHost>
"""

HTACCESS = "WSGITrustedProxyHeaders X-Forwarded-Port\nWSGITrustedProxies 127.0.0.2\n"


@pytest.fixture(scope="module", params=MODES)
def merge_srv(request, rwsgi_path):
    s = ApacheServer(rwsgi_path, config=in_mode(MERGE_SITE, request.param),
                     name=f"proxy-merge-{request.param}")
    try:
        d = s.apps / "proxy_ht"
        d.mkdir()
        shutil.copy(s.apps / "proxy_environ.wsgi", d / "proxy_environ.wsgi")
        (d / ".htaccess").write_text(HTACCESS)
        os.chmod(d, 0o755)
        for f in d.iterdir():
            os.chmod(f, 0o644)
        s.start()
    except BaseException:
        s.stop()
        raise
    yield s
    s.stop(wait=False)


MERGE_REQ = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "fh.example"),
             ("X-Real-IP", "203.0.113.5"), ("X-Forwarded-Server", "fs.example"),
             ("X-Forwarded-Port", "8443"), ("X-Scheme", "https")]

MERGE_CASES = [
    # (id, path, src, Host, expected)
    ("server-level-appends", "/p/x", TRUSTED, None,
     {"wsgi.url_scheme": "https", "HTTP_HOST": "fh.example", "REMOTE_ADDR": TRUSTED,
      "HTTP_X_SCHEME": None, "HTTP_X_REAL_IP": "203.0.113.5"}),
    ("server-level-untrusted", "/p/x", UNTRUSTED, None,
     {"wsgi.url_scheme": "http", "HTTP_X_FORWARDED_HOST": None, "HTTP_X_FORWARDED_PROTO": None,
      "HTTP_X_REAL_IP": "203.0.113.5"}),
    # a <Location> list replaces the inherited list (no union); proxies still inherited
    ("location-headers-replace", "/p/hdr/x", TRUSTED, None,
     {"REMOTE_ADDR": "203.0.113.5", "wsgi.url_scheme": "http",
      "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "fh.example",
      "HTTP_X_SCHEME": "https"}),
    ("location-headers-inherit-proxies", "/p/hdr/x", UNTRUSTED, None,
     {"REMOTE_ADDR": UNTRUSTED, "HTTP_X_REAL_IP": None}),
    ("location-proxies-replace", "/p/prox/x", TRUSTED, None,
     {"wsgi.url_scheme": "http", "HTTP_X_FORWARDED_PROTO": None}),
    ("location-proxies-replace-2", "/p/prox/x", UNTRUSTED, None,
     {"wsgi.url_scheme": "https", "HTTP_HOST": "fh.example", "HTTP_X_REAL_IP": "203.0.113.5"}),
    # an empty WSGITrustedProxyHeaders switches the inherited handling off
    ("empty-headers-disable", "/p/off/x", TRUSTED, None,
     {"wsgi.url_scheme": "http", "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_SCHEME": "https"}),
    # an empty WSGITrustedProxies trusts nobody (not everybody)
    ("empty-proxies-nobody", "/p/nobody/x", TRUSTED, None,
     {"wsgi.url_scheme": "http", "HTTP_X_FORWARDED_PROTO": None, "HTTP_X_FORWARDED_HOST": None}),
    # a virtual host's list replaces the main server's; proxies inherited
    ("vhost", "/p/x", TRUSTED, "vh.example",
     {"SERVER_NAME": "fs.example", "HTTP_HOST": "vh.example", "wsgi.url_scheme": "http",
      "HTTP_X_FORWARDED_PROTO": "https"}),
    ("vhost-untrusted", "/p/x", UNTRUSTED, "vh.example",
     {"SERVER_NAME": "vh.example", "HTTP_X_FORWARDED_SERVER": None,
      "HTTP_X_FORWARDED_PROTO": "https"}),
    # .htaccess (AllowOverride FileInfo)
    ("htaccess", "/ht/x", UNTRUSTED, None,
     {"SERVER_PORT": "8443", "wsgi.url_scheme": "http", "HTTP_X_FORWARDED_PROTO": "https"}),
    ("htaccess-untrusted", "/ht/x", TRUSTED, None,
     {"HTTP_X_FORWARDED_PORT": None, "HTTP_X_FORWARDED_PROTO": "https"}),
]


#: cases whose X-Forwarded-Server/-Port come from an untrusted peer (4.x keeps them)
SERVER_PORT_UNTRUSTED = ("vhost-untrusted", "htaccess-untrusted")


@pytest.mark.parametrize("case,path,src,host,expected", MERGE_CASES,
                         ids=[c[0] for c in MERGE_CASES])
def test_contexts_and_merging(request, merge_srv, case, path, src, host, expected):
    if case in SERVER_PORT_UNTRUSTED:
        fixed_in_6(request, merge_srv, "4.x keeps X-Forwarded-Server/-Port from an untrusted peer")
    hdrs = list(MERGE_REQ)
    if host:
        hdrs.insert(0, ("Host", host))
    env = fetch(merge_srv, path, hdrs, src=src)
    if "SERVER_PORT" not in expected and path.startswith("/ht"):
        expected = dict(expected, SERVER_PORT=str(merge_srv.port))
    check(env, expected)


# --------------------------------------------------------------------------
# directive arguments (configtest only)


@pytest.mark.parametrize("line,ok", [
    ("WSGITrustedProxies 10.0.0.1 192.168.0.0/16 172.16.0.0/255.240.0.0", True),
    ("WSGITrustedProxies 10.1", True),
    ("WSGITrustedProxies ::1 fe80::/10 2001:db8::/32", True),
    ("WSGITrustedProxies", True),
    ("WSGITrustedProxyHeaders", True),
    ("WSGITrustedProxyHeaders X-Foo Forwarded X-Forwarded-For", True),
    ("<Location /x>\n  WSGITrustedProxyHeaders X-Forwarded-For\n  WSGITrustedProxies 10.0.0.1\n"
     "</Location>", True),
    ("<Directory /tmp>\n  WSGITrustedProxyHeaders X-Forwarded-For\n"
     "  WSGITrustedProxies 10.0.0.1\n</Directory>", True),
    ("<Files x.wsgi>\n  WSGITrustedProxyHeaders X-Forwarded-For\n</Files>", True),
    ("<VirtualHost 127.0.0.1:{port}>\n  WSGITrustedProxyHeaders X-Forwarded-For\n"
     "  WSGITrustedProxies 10.0.0.1\n</VirtualHost>", True),
    ("WSGITrustedProxies localhost", False),
    ("WSGITrustedProxies 10.0.0.1 proxy.example", False),
    ("WSGITrustedProxies 10.0.0.0/33", False),
    ("WSGITrustedProxies 300.1.1.1", False),
    ("WSGITrustedProxies 1.2.3.4.5", False),
], ids=lambda v: re.sub(r"\s+", " ", v)[:60] if isinstance(v, str) else str(v))
def test_directive_arguments(rwsgi_path, line, ok):
    s = ApacheServer(rwsgi_path, config=line, name="proxy-cfg")
    try:
        good, out = s.configtest()
    finally:
        s.stop()
    assert good == ok, out
    if not ok:
        bad = line.split()[-1]
        assert bad in out, out


# --------------------------------------------------------------------------
# mod_ssl: a trusted scheme header is not undone by Apache's own TLS (6.x)

TLS_SITE = """
WSGIScriptAlias /p {apps}/proxy_environ.wsgi
WSGITrustedProxyHeaders X-Forwarded-Proto X-Forwarded-SSL
WSGITrustedProxies 127.0.0.1
Listen 127.0.0.1:@SSLPORT@
<VirtualHost 127.0.0.1:@SSLPORT@>
    SSLEngine on
    SSLCertificateFile {root}/tls.crt
    SSLCertificateKeyFile {root}/tls.key
</VirtualHost>
"""


@pytest.fixture(scope="module", params=MODES)
def tls_srv(request, rwsgi_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl command not available")
    ssl_port = harness._free_port()
    s = ApacheServer(rwsgi_path, config=in_mode(TLS_SITE, request.param).replace(
        "@SSLPORT@", str(ssl_port)), name=f"proxy-tls-{request.param}", load_modules=("ssl",))
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(s.root / "tls.key"), "-out", str(s.root / "tls.crt"),
                        "-days", "2", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        s.start()
    except BaseException:
        s.stop()
        raise
    s.ssl_port = ssl_port
    yield s
    s.stop(wait=False)


@pytest.mark.parametrize("src,hdrs,scheme,fixed", [
    (TRUSTED, [], "https", False),
    (TRUSTED, [("X-Forwarded-Proto", "https")], "https", False),
    (TRUSTED, [("X-Forwarded-Proto", "http")], "http", True),
    (TRUSTED, [("X-Forwarded-SSL", "off")], "http", True),
    (TRUSTED, [("X-Forwarded-Proto", "ftp")], "https", False),
    (UNTRUSTED, [("X-Forwarded-Proto", "http")], "https", False),
], ids=["no-header", "trusted-https", "trusted-http", "trusted-ssl-off", "trusted-junk",
        "untrusted-http"])
def test_scheme_header_over_tls(request, tls_srv, src, hdrs, scheme, fixed):
    if fixed:
        fixed_in_6(request, tls_srv, "4.x lets mod_ssl's HTTPS override a trusted scheme header")
    env = fetch(tls_srv, "/p/x", hdrs, src=src, port=tls_srv.ssl_port, tls=True)
    assert env["wsgi.url_scheme"] == scheme
    assert "HTTPS" not in env
    for h, v in hdrs:
        assert env.get(env_key(h)) == (v if src == TRUSTED else None)


# --------------------------------------------------------------------------
# a header name that cannot be an HTTP_* key


def test_invalid_header_name_does_not_crash(request, make_server):
    """`X_Forwarded_For` (underscores) has no HTTP_* form. mod_wsgi accepts it and then
    crashes the Apache child on every request to that location (a NULL name in its list).
    rwsgi must not: refusing it at configtest is fine, so is ignoring it."""
    config = ("WSGIScriptAlias /p {apps}/proxy_environ.wsgi\n"
              "WSGITrustedProxyHeaders X_Forwarded_For X-Forwarded-Proto\n")
    srv = make_server(config, start=False, name="proxy-badname")
    ok, out = srv.configtest()
    if not ok:
        assert "X_Forwarded_For" in out, out
        return
    srv.start()
    rwsgi_only(request, srv, "mod_wsgi's child segfaults (strcmp on a NULL header name)")
    env = fetch(srv, "/p/x", [("X-Forwarded-Proto", "https")])
    assert env["wsgi.url_scheme"] == "https"
