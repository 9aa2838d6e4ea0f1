"""Differential tests: the same apps and requests served by Debian's mod_wsgi
(the reference) and by the module under test, side by side in one run. The
two servers share the configuration apart from the LoadModule line; responses
(status, reason, headers minus Date/Server, body, framing) must be identical,
and environ dumps must agree key by key except for a short allow-list.

With RWSGI_TEST_MODULE=modwsgi this compares mod_wsgi with itself (it must
pass: it validates the normalisation).
"""
import json

import pytest

from harness import start_server

CONFIG = """
WSGIPythonHome {venv}
WSGIChunkedRequest On
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /edge {apps}/edge.wsgi
WSGIScriptAlias /flask {apps}/flask_app.py
WSGIScriptAlias /django {apps}/django_site/wsgi.py
WSGIScriptAlias /wz {apps}/werkzeug_demo.py
WSGIScriptAlias /falcon {apps}/falcon_app.py
WSGIScriptAlias /bottle {apps}/bottle_app.py
WSGIScriptAliasMatch ^/match/([^/]+) {apps}/$1.wsgi
WSGIScriptAlias /hello {apps}/hello.wsgi
WSGIScriptAlias / {apps}/environ.wsgi
"""

# Response headers whose values legitimately differ.
IGNORED_HEADERS = {
    "date",  # wall clock
    "server",  # banner names the module: "... mod_wsgi/4.9.4 Python/3.11"
    "keep-alive",  # Apache's "timeout=5, max=N" countdown
}

# environ keys mod_wsgi 4.9 sets and rwsgi leaves out on purpose (as mod_wsgi 6 does);
# test_mapping asserts they are absent.
ENVIRON_LEFT_OUT = {
    "PATH_TRANSLATED": "Apache computes it with a sub-request per request; unused by WSGI apps",
}

# environ keys whose *values* may differ (presence and JSON type must still match).
ENVIRON_VALUE_ALLOWED = {
    "REMOTE_PORT": "client's ephemeral port",
    "SERVER_SOFTWARE": "Apache banner includes the module name/version",
    "mod_wsgi.request_id": "Apache's unique per-request id",
    "mod_wsgi.connection_id": "Apache's per-connection id (if present)",
    "mod_wsgi.request_start": "timestamp (us since epoch, str in 4.9)",
    "mod_wsgi.script_start": "timestamp",
    "mod_wsgi.queue_start": "timestamp (daemon mode)",
    "mod_wsgi.daemon_start": "timestamp (daemon mode)",
    "mod_wsgi.thread_id": "which Apache worker thread served the request",
    "mod_wsgi.thread_requests": "per-thread request counter: depends on scheduling",
    "mod_wsgi.total_requests": "per-process request counter: depends on scheduling",
    "mod_wsgi.version": "rwsgi may report its own version tuple (type must still be a tuple of ints)",
    "apache.version": "mod_wsgi reports the httpd headers it was compiled against (2.4.55 in "
                      "Debian's build), rwsgi those it was built against",
    "mod_wsgi.queue_start": "timestamp (daemon mode)",
    "mod_wsgi.daemon_connects": "connection attempts: rwsgi keeps connections open across requests",
}
# the dump's own process facts: only these sub-keys are compared
X_PROCESS_COMPARED = ("python", "executable_prefix")


# The same applications in daemon mode (issue: daemon mode passes the same differential test);
# the group inherits WSGIPythonHome, as in mod_wsgi.
DAEMON_CONFIG = """
WSGIDaemonProcess diff processes=2 threads=4
WSGIProcessGroup diff
""" + CONFIG


@pytest.fixture(scope="module", params=["embedded", "daemon"])
def pair(request, rwsgi_path, modwsgi_path, venv):
    config = CONFIG if request.param == "embedded" else DAEMON_CONFIG
    ref = start_server(modwsgi_path, config, name=f"diff-{request.param}")
    try:
        sut = start_server(rwsgi_path, config, name=f"diff-{request.param}")
    except BaseException:
        ref.stop()
        raise
    yield ref, sut
    ref.stop(wait=False)
    sut.stop(wait=False)


def _norm_text(s: str, srv) -> str:
    return s.replace(str(srv.root), "{root}").replace(str(srv.port), "{port}")


def _norm_obj(o, srv):
    if isinstance(o, str):
        return _norm_text(o, srv)
    if isinstance(o, list):
        return [_norm_obj(x, srv) for x in o]
    if isinstance(o, dict):
        return {_norm_text(k, srv): _norm_obj(v, srv) for k, v in o.items()}
    return o


def _jtype(v):
    return type(v).__name__


# Framing headers are compared by _check_framing() instead.
FRAMING_HEADERS = {"content-length", "transfer-encoding"}


def _headers(r):
    out = [(k.lower(), v) for k, v in r.headers
           if k.lower() not in IGNORED_HEADERS and k.lower() not in FRAMING_HEADERS]
    return sorted(out, key=lambda kv: kv[0])  # stable: duplicates keep their order


def _check_framing(a, b, norm: bool):
    """How the body is delimited must agree, with one permitted difference:
    where mod_wsgi chunks a body whose length the app did not declare, the
    module under test may send a Content-Length instead (PEP 3333 allows a
    server to compute it, e.g. for a one-item list) -- as long as it is right.
    An app-declared Content-Length (reference not chunked) must be identical
    (unless the body was normalised), and a truncated response must stay
    detectably truncated (unterminated chunked body) in both."""
    assert b.complete == a.complete, ("complete", a, b)
    if not a.complete:  # truncated: must be an unterminated chunked body in both
        assert (b.chunked, b.chunked_terminated) == (a.chunked, a.chunked_terminated), (a, b)
        return
    if a.chunked:
        if not b.chunked and b.header("Content-Length") is not None:
            assert int(b.header("Content-Length")) == len(b.body), b
    elif a.header("Content-Length") is not None:
        assert not b.chunked, (a, b)
        if not norm:
            assert b.header("Content-Length") == a.header("Content-Length"), (a, b)
        else:
            assert b.header("Content-Length") is not None
    else:  # close-delimited (HTTP/1.0) or no body (HEAD, 204)
        assert not b.chunked, (a, b)
        if a.header("Content-Length") is None and b.header("Content-Length") is not None:
            assert int(b.header("Content-Length")) == len(b.body) or not b.body, b


def _send(srv, req):
    method, path = req["method"], req["path"]
    return srv.request(method, path, headers=req.get("headers"), body=req.get("body"),
                       chunked=req.get("chunked", False), timeout=req.get("timeout", 15))


def R(path, method="GET", *, norm=False, id=None, **kw):
    d = {"method": method, "path": path, "norm": norm, **kw}
    return pytest.param(d, id=id or f"{method} {path}")


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MULTIPART_BOUNDARY = "diffBOUNDARY"
MULTIPART = (
    f"--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n"
    f"--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"up\"; filename=\"x.bin\"\r\n"
    "Content-Type: application/octet-stream\r\n\r\n"
).encode() + b"\x00\xffdata" * 50 + f"\r\n--{MULTIPART_BOUNDARY}--\r\n".encode()

RESPONSES = [
    # hello / mapping
    R("/hello"),
    R("/hello", "HEAD"),
    R("/match/hello"),
    R("/match/nothere/x"),
    R("/env%2Fx"),
    # edge cases: request bodies
    R("/edge?t=echo", "POST", body=b"x" * 70000),
    R("/edge?t=echo", "POST", body=[b"abc", b"d" * 5000, b"ef"], chunked=True, id="POST echo chunked"),
    R("/edge?t=read_n&n=5", "POST", body=b"0123456789abcdefghij!"),
    R("/edge?t=readline_n&n=5", "POST", body=b"line1\nline2longer\n\nlast"),
    R("/edge?t=readlines", "POST", body=b"a\nbb\n\nccc"),
    R("/edge?t=iter", "POST", body=[b"a\nb", b"b\n\nc"], chunked=True, id="POST iter chunked"),
    R("/edge?t=read0", "POST", body=b"abc"),
    R("/edge?t=headers", "POST", body=b"k=v", headers=FORM, norm=True),
    # edge cases: responses
    *[R(f"/edge?t={t}") for t in (
        "badstatus", "nostatusspace", "status_ctl", "bytes_status", "nonlatin", "crlf", "bytes_name",
        "bytes_value", "headers_not_list", "header_not_tuple", "space_in_name", "clbad", "str_body",
        "int_body", "str_body_after", "exc_before", "exc_after", "nostart", "twice", "excinfo",
        "excinfo_after", "excinfo_after_raise", "write", "write_only", "filewrapper", "filewrapper_obj",
        "filewrapper_offset&off=777", "filewrapper_cl", "status_lower", "status_custom", "head_nocl",
        "multi_cookie", "emptybody", "emptystrings", "latin1", "status204", "redirect", "cllong",
        "gen_cl", "gen_cl&after=raise",
        "bighdr&n=40000", "bigresp&n=200000&cl=1", "bigresp&n=200000&cl=0",
        "generator_slow&n=3&s=0.02", "unknown",
    )],
    R("/edge?t=head", "HEAD"),
    R("/edge?t=head_nocl", "HEAD"),
    R("/edge?t=close&id=diff"),
    R("/edge?t=write", http_version="HTTP/1.0", id="GET write HTTP/1.0"),
    # Flask
    R("/flask/"),
    R("/flask/hello/W%C3%B6rld"),
    R("/flask/json?a=1&b=%20", norm=True),
    R("/flask/nope"),
    R("/flask/form", "POST", body=b"a=1&b=two", headers=FORM),
    R("/flask/upload", "POST", body=bytes(range(256)) * 100),
    R("/flask/headers"),
    R("/flask/status/418"),
    R("/flask/error"),
    # Django
    R("/django/?name=Diff"),
    R("/django/api/json?x=1", norm=True),
    R("/django/nope"),
    R("/django/form", "POST", body=b"a=1&b=%C3%A9", headers=FORM),
    R("/django/error"),
    # werkzeug demo
    R("/wz/p/q?a=1&a=2", norm=True, headers={"Cookie": "c=1", "User-Agent": "diff/1"}),
    R("/wz/form", "POST", norm=True, body=b"x=1&y=2", headers=FORM),
    R("/wz/upload", "POST", norm=True, body=MULTIPART,
      headers={"Content-Type": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"}),
    R("/wz/chunked", "POST", norm=True, body=[b"abc", b"def"], chunked=True, id="POST wz chunked"),
    # Falcon / Bottle
    R("/falcon/things?limit=2"),
    R("/falcon/things/missing"),
    R("/falcon/things", "POST", body=b'{"a": 1}', headers={"Content-Type": "application/json"}),
    R("/bottle/hello/x"),
    R("/bottle/json?q=1"),
    R("/bottle/nope", norm=True),  # error page contains the URL
]


# Where mod_wsgi's daemon mode differs from its own embedded mode (known mod_wsgi bugs), rwsgi
# keeps the embedded behaviour in daemon mode too; test_daemon.py asserts that behaviour.
DAEMON_MODE_BUGS = {
    "/edge?t=exc_after": "daemon mode ends a failed response cleanly (truncation invisible)",
    "/edge?t=str_body_after": "same: an error after the first bytes looks like a clean end",
    "/edge?t=excinfo_after_raise": "same: an error after the first bytes looks like a clean end",
    "/edge?t=multi_cookie": "daemon mode merges repeated headers into one line (except Set-Cookie)",
    "/edge?t=bighdr&n=40000": "daemon mode refuses response header lines over 32 KiB (500)",
}


@pytest.mark.parametrize("req", RESPONSES)
def test_same_response(request, pair, req):
    ref, sut = pair
    if "daemon" in request.node.callspec.id and req["path"] in DAEMON_MODE_BUGS:
        pytest.skip("mod_wsgi daemon-mode bug: " + DAEMON_MODE_BUGS[req["path"]])
    a, b = _send(ref, req), _send(sut, req)
    assert (b.status, b.reason) == (a.status, a.reason), (a, b)
    assert _headers(b) == _headers(a)
    _check_framing(a, b, req["norm"])
    if req["norm"]:
        assert _norm_text(b.body.decode("latin-1"), sut) == _norm_text(a.body.decode("latin-1"), ref)
    else:
        assert b.body == a.body


# --------------------------------------------------------------------------
# environ dumps

ENVIRON_REQUESTS = [
    R("/env"),
    R("/env/"),
    R("/env/a//b/%7Ex%20y?x=1&y=%20&z"),
    R("/"),
    R("/some/deep/path.html?q"),
    R("/match/environ/p/q"),
    R("/env", "POST", body=b"a=1&b=2", headers=FORM),
    R("/env", "POST", body=[b"chunk"], chunked=True, id="POST env chunked"),
    R("/env", "PUT", body=b"{}", headers={"Content-Type": "application/json"}),
    R("/env", "DELETE"),
    R("/env", "OPTIONS"),
    R("/env/h", headers=[("X-Custom", "v"), ("X_Under", "1"), ("X-Dup", "a"), ("X-Dup", "b"),
                         ("Cookie", "k=v"), ("Authorization", "Basic dTpw"), ("Proxy", "x"),
                         ("Accept-Encoding", "gzip"), ("User-Agent", "diff")], id="GET env headers"),
    R("/env", http_version="HTTP/1.0", id="GET env HTTP/1.0"),
]


def _environ_diff(a: dict, b: dict) -> list:
    problems = []
    for k in sorted(set(a) | set(b)):
        if k in ENVIRON_LEFT_OUT and k not in b:
            continue
        if k not in a or k not in b:
            problems.append(f"{k}: only in {'reference' if k in a else 'module under test'}"
                            f" = {a.get(k, b.get(k))!r}")
            continue
        va, vb = a[k], b[k]
        if k == "x-process":
            for sub in X_PROCESS_COMPARED:
                if va.get(sub) != vb.get(sub):
                    problems.append(f"x-process.{sub}: {va.get(sub)!r} != {vb.get(sub)!r}")
            continue
        if _jtype(va) != _jtype(vb):
            problems.append(f"{k}: type {_jtype(va)} != {_jtype(vb)} ({va!r} vs {vb!r})")
            continue
        if k == "x-types":
            va = {t: v for t, v in va.items()
                  if t not in ENVIRON_VALUE_ALLOWED and not (t in ENVIRON_LEFT_OUT and t not in vb)}
            vb = {t: v for t, v in vb.items() if t not in ENVIRON_VALUE_ALLOWED}
        if k in ENVIRON_VALUE_ALLOWED:
            if k == "mod_wsgi.version" and not (len(vb) == 3 and all(isinstance(x, int) for x in vb)):
                problems.append(f"{k}: {vb!r} is not a 3-tuple of ints")
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            for sub in sorted(set(va) | set(vb)):
                if va.get(sub, "<missing>") != vb.get(sub, "<missing>"):
                    problems.append(f"{k}[{sub!r}]: {va.get(sub, '<missing>')!r} != {vb.get(sub, '<missing>')!r}")
        elif va != vb:
            problems.append(f"{k}: {va!r} != {vb!r}")
    return problems


@pytest.mark.parametrize("req", ENVIRON_REQUESTS)
def test_same_environ(pair, req):
    ref, sut = pair
    a, b = _send(ref, req), _send(sut, req)
    assert a.status == 200, a
    assert b.status == 200, b
    ea = _norm_obj(json.loads(a.body), ref)
    eb = _norm_obj(json.loads(b.body), sut)
    problems = _environ_diff(ea, eb)
    assert not problems, "environ differs:\n  " + "\n  ".join(problems)


def test_normalisation_is_not_vacuous(pair):
    """The comparison must actually see server-specific values."""
    ref, sut = pair
    e = json.loads(ref.get("/env").body)
    assert e["SERVER_PORT"] == str(ref.port)
    assert e["SCRIPT_FILENAME"].startswith(str(ref.root))
    assert _norm_obj(e, ref)["SCRIPT_FILENAME"] == "{root}/apps/environ.wsgi"
    assert _norm_obj(e, ref)["mod_wsgi.application_group"] == "127.0.0.1:{port}|/env"
    if sut is not ref:
        assert sut.port != ref.port and sut.root != ref.root
