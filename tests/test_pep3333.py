"""PEP 3333 conformance: environ, wsgi.input, write(), close(), exc_info,
wsgi.file_wrapper, wsgi.errors / stdout / stderr."""
import hashlib
import json
import os
import re
import socket
import time

import pytest

from conftest import MODES, in_mode
from harness import MPMS, _Reader, _read_response, parse_response, start_server

CONFIG = """
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /edge {apps}/edge.wsgi
WSGIScriptAlias /nochunk {apps}/edge.wsgi
<Location /edge>
    WSGIChunkedRequest On
</Location>
"""

BODY = b"line1\nline2longer\n\nlast"
BODY_CHUNKS = [b"line1\nli", b"ne2longer\n", b"\nla", b"st"]
LINES = ["line1\n", "line2longer\n", "\n", "last"]


@pytest.fixture(scope="module", params=MODES)
def srv(request, rwsgi_path):
    s = start_server(rwsgi_path, in_mode(CONFIG, request.param), name=f"pep3333-{request.param}")
    s.mode = request.param
    yield s
    s.stop(wait=False)


@pytest.fixture(scope="module", params=MPMS)
def mpm_srv(request, rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, mpm=request.param, name=f"pep3333-{request.param}")
    yield s
    s.stop(wait=False)


# --------------------------------------------------------------------------
# environ


@pytest.mark.parametrize("host", ["example.test", "example.test:9999", None],
                         ids=["host-without-port", "host-with-another-port", "http10-no-host"])
def test_listener_is_where_the_connection_arrived(srv, host):
    """mod_wsgi.listener_host/_port name the listener (Listen 127.0.0.1:PORT), whatever the
    Host header says or when there is none."""
    head = b"GET /env/l HTTP/1.0\r\n" if host is None else (
        b"GET /env/l HTTP/1.1\r\nHost: " + host.encode() + b"\r\n")
    raw = srv.raw_request(head + b"Connection: close\r\n\r\n")
    r = parse_response(raw)
    assert r.status == 200, raw[:300]
    env = json.loads(r.body)
    assert env["mod_wsgi.listener_port"] == str(srv.port), env["mod_wsgi.listener_port"]
    assert env["mod_wsgi.listener_host"] == "127.0.0.1"


def test_environ_wsgi_keys(srv):
    env = srv.get("/env/p?q=1").json()
    types = env["x-types"]
    assert env["wsgi.version"] == [1, 0] and types["wsgi.version"] == "tuple"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.run_once"] is False
    for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        assert types[k] == "bool", k
    assert set(env["x-input-methods"]) >= {"read", "readline", "readlines", "__iter__"}
    assert set(env["x-errors-methods"]) >= {"write", "writelines", "flush"}
    assert types["wsgi.file_wrapper"] in ("type", "function", "builtin_function_or_method")


def test_environ_cgi_keys(srv):
    env = srv.get("/env/p?q=1", headers={"X-Custom": "yes"}).json()
    types = env["x-types"]
    for k in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
              "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REQUEST_URI", "HTTP_HOST"):
        assert k in env, k
        assert types[k] == "str", k
    # every CGI-style key (upper-case, no dot) is a native str
    for k, t in types.items():
        if "." not in k and k.isupper():
            assert t == "str", (k, t)
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_PORT"] == str(srv.port)
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_CUSTOM"] == "yes"
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    # no body: no CONTENT_LENGTH / CONTENT_TYPE, never HTTP_CONTENT_*
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env
    assert "PATH" not in env and "HTTPS" not in env


def test_environ_content_keys(srv):
    r = srv.post("/env", b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    env = r.json()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["CONTENT_LENGTH"] == "3"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_CONTENT_TYPE" not in env


def test_environ_mod_wsgi_keys(srv):
    env = srv.get("/env").json()
    assert env["mod_wsgi.process_group"] == ("" if srv.mode == "embedded" else "suite")
    assert env["mod_wsgi.callable_object"] == "application"
    assert env["mod_wsgi.request_handler"] == "wsgi-script"
    assert isinstance(env["mod_wsgi.version"], list) and len(env["mod_wsgi.version"]) == 3
    assert env["x-types"]["mod_wsgi.version"] == "tuple"
    assert env["mod_wsgi.listener_host"] == "127.0.0.1"
    assert env["mod_wsgi.listener_port"] == str(srv.port)
    # 4.9 semantics: microseconds since the epoch as a str
    assert re.fullmatch(r"\d{16}", env["mod_wsgi.request_start"])
    assert abs(int(env["mod_wsgi.request_start"]) / 1e6 - time.time()) < 60


def test_multithread_multiprocess_per_mpm(mpm_srv):
    env = mpm_srv.get("/env").json()
    if mpm_srv.mpm == "prefork":
        assert env["wsgi.multithread"] is False
    else:
        assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is True


def test_environ_values_are_each_requests_own(srv):
    """Requests that differ in method, Host, User-Agent, Content-Type, path and query, one
    after another on one connection and on new ones, each see their own values; an
    application that rewrites its environ leaves the next request's untouched. (The server
    reuses the str objects of names and of values that repeat.)"""
    shapes = [
        ("GET", "/env/a?x=1", {"Host": "one.test", "User-Agent": "ua/1"}, None),
        ("POST", "/env/b", {"Host": "two.test", "User-Agent": "ua/2",
                            "Content-Type": "text/plain"}, b"body"),
        ("GET", "/env/a?x=1", {"Host": "one.test", "User-Agent": "ua/1"}, None),
        ("GET", "/env/?mutate", {"Host": "one.test"}, None),
        ("PUT", "/env/c", {"Host": "three.test", "Content-Type": "application/json"}, b"{}"),
        ("GET", "/env/a?x=1", {"Host": "one.test", "User-Agent": "ua/1"}, None),
    ]

    def check(env, method, path, headers, body):
        assert env["REQUEST_METHOD"] == method
        assert env["HTTP_HOST"] == headers["Host"]
        assert env.get("HTTP_USER_AGENT") == headers.get("User-Agent")
        assert env.get("CONTENT_TYPE") == headers.get("Content-Type")
        assert env["PATH_INFO"] == path.split("?")[0][len("/env"):]
        assert env["QUERY_STRING"] == (path.split("?") + [""])[1]
        assert env["SCRIPT_NAME"] == "/env" and env["SERVER_NAME"] == headers["Host"]
        assert "X_ADDED" not in env
        assert not any(isinstance(v, str) and v.endswith("-changed") for v in env.values())

    with srv.keepalive() as conn:
        for _ in range(2):
            for method, path, headers, body in shapes:
                r = conn.request(method, path, headers=headers, body=body)
                assert r.status == 200, r.raw[:300]
                check(r.json(), method, path, headers, body)
    for method, path, headers, body in shapes:
        r = srv.request(method, path, headers=headers, body=body)
        assert r.status == 200
        check(r.json(), method, path, headers, body)


# --------------------------------------------------------------------------
# wsgi.input


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
class TestInput:
    def _post(self, srv, t, chunked, body=BODY, chunks=BODY_CHUNKS):
        if chunked:
            return srv.post("/edge?t=" + t, chunks, chunked=True)
        return srv.post("/edge?t=" + t, body)

    def test_read_all(self, srv, chunked):
        r = self._post(srv, "echo", chunked)
        assert r.status == 200 and r.body == BODY

    def test_read_n_loops_until_n_or_eof(self, srv, chunked):
        r = self._post(srv, "read_n&n=7", chunked)
        assert r.status == 200 and r.body == BODY
        # read(n) returns exactly n bytes until the final short read
        assert r.header("X-Chunk-Sizes") == "7,7,7,2"
        assert r.header("X-EOF-Again") == "b''"

    def test_read_zero(self, srv, chunked):
        r = self._post(srv, "read0", chunked)
        assert r.json() == {"read0": "", "rest": BODY.decode()}

    def test_readline(self, srv, chunked):
        assert self._post(srv, "readline", chunked).json() == LINES

    def test_readline_size(self, srv, chunked):
        r = self._post(srv, "readline_n&n=5", chunked)
        assert r.json() == ["line1", "\n", "line2", "longe", "r\n", "\n", "last"]

    def test_readlines(self, srv, chunked):
        assert self._post(srv, "readlines", chunked).json() == LINES

    def test_readlines_hint(self, srv, chunked):
        r = self._post(srv, "readlines&hint=8", chunked)
        assert r.json() == {"lines": ["line1\n", "line2longer\n"], "rest": "\nlast"}

    def test_iter(self, srv, chunked):
        assert self._post(srv, "iter", chunked).json() == LINES

    def test_bytes_returned(self, srv, chunked):
        assert self._post(srv, "input_types", chunked).json() == {"read": "bytes", "readline": "bytes"}

    def test_empty_body(self, srv, chunked):
        r = self._post(srv, "echo", chunked, body=b"", chunks=[])
        assert r.status == 200 and r.body == b""

    def test_large_body(self, srv, chunked):
        data = bytes(range(256)) * 8192  # 2 MiB
        if chunked:
            r = srv.post("/edge?t=echo", [data[i:i + 100000] for i in range(0, len(data), 100000)],
                         chunked=True, timeout=30)
        else:
            r = srv.post("/edge?t=echo", data, timeout=30)
        assert r.status == 200
        assert len(r.body) == len(data) and r.body == data


def test_input_is_native_type_with_mod_wsgi_argument_handling(srv):
    r = srv.post("/edge?t=input_api", b"abc")
    assert r.status == 200, r.body
    assert r.json() == {
        "type": "mod_wsgi.Input", "new": "TypeError", "read_str": "TypeError",
        "read_two": "TypeError", "readline_float": "TypeError", "read_none": "abc",
        "readline_none_at_eof": "", "close": "None",
    }


@pytest.mark.parametrize("n", [1000, 8192, 65535, 65536, 100000, 1 << 20])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_read_n_over_a_large_body(srv, n, chunked):
    """read(n) smaller than, equal to and larger than the 64 KiB read buffer, across many
    refills: every byte once, in order, every piece n long but the last."""
    data = os.urandom(300_000)
    body = [data[i:i + 70_000] for i in range(0, len(data), 70_000)] if chunked else data
    r = srv.post(f"/edge?t=read_pieces&n={n}", body, chunked=chunked, timeout=30)
    got = r.json()
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert max(got["sizes"]) == min(n, len(data))
    assert len(got["sizes"]) <= 2


def _trickle(srv, target, data, chunked, pieces):
    """POSTs `data` in `pieces` parts with pauses between them (the application's reads find
    part of what they ask for at hand and must wait for the rest); the parsed response."""
    head = (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(data)}\r\n")
            + "\r\n").encode()
    step = -(-len(data) // pieces)
    parts = [data[i:i + step] for i in range(0, len(data), step)]
    with srv.connect(timeout=30) as s:
        s.sendall(head)
        for p in parts:
            time.sleep(0.05)
            s.sendall(b"%x\r\n%s\r\n" % (len(p), p) if chunked else p)
        if chunked:
            s.sendall(b"0\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return parse_response(raw)


@pytest.mark.parametrize("n", [8192, 65536, 262144, 1048576])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_reads_of_a_body_that_trickles_in(srv, n, chunked):
    """A body arriving in pieces, with pauses: reads take what is at hand and wait for the
    rest: every byte once, in order, every piece n long but the last. Reads larger than what
    Apache reads per filter-chain call (64 KiB) span several of those calls and pauses."""
    data = os.urandom(max(200_003, 2 * n + 12_345))
    r = _trickle(srv, f"/edge?t=read_pieces&n={n}", data, chunked, pieces=7)
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert max(got["sizes"]) == n and len(got["sizes"]) == 2


def test_pipelined_requests_after_large_bodies(srv):
    """Requests sent back to back on one connection, each body large: a body read takes up to
    64 KiB from the socket at once, so the read that ends one body also takes the start of
    the next request, which must be parsed from what was read, not lost or doubled."""
    a, b = os.urandom(300_001), os.urandom(200_003)
    chunks = [b[i:i + 70_000] for i in range(0, len(b), 70_000)]
    stream = (
        b"POST /edge?t=read_pieces&n=65536 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(a), a)
        + b"POST /edge?t=read_pieces&n=8192 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        + b"GET /env HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    with srv.connect(timeout=30) as s:
        s.sendall(stream)
        reader = _Reader(s, time.monotonic() + 30)
        first, second, third = (_read_response(reader, "GET") for _ in range(3))
    assert first.status == 200 and json.loads(first.body)["sha256"] == hashlib.sha256(a).hexdigest()
    assert second.status == 200 and json.loads(second.body)["sha256"] == hashlib.sha256(b).hexdigest()
    assert third.status == 200 and json.loads(third.body)["REQUEST_METHOD"] == "GET"


@pytest.mark.parametrize("how", ["readline", "iter"])
def test_lines_of_a_body_that_trickles_in(srv, how):
    lines = [b"%d:" % i + b"z" * (i % 53) + b"\n" for i in range(3000)]
    data = b"".join(lines) + b"tail"
    r = _trickle(srv, f"/edge?t=line_pieces&how={how}", data, False, pieces=9)
    assert r.status == 200, r
    assert json.loads(r.body) == {"sha256": hashlib.sha256(data).hexdigest(), "lines": len(lines) + 1}


@pytest.mark.parametrize("how", ["readline", "iter"])
def test_many_short_lines_across_buffer_refills(srv, how):
    lines = [b"%d:" % i + b"y" * (i % 97) + b"\n" for i in range(20_000)]
    data = b"".join(lines) + b"no newline at the end"
    r = srv.post(f"/edge?t=line_pieces&how={how}", data, timeout=30)
    got = r.json()
    assert got == {"sha256": hashlib.sha256(data).hexdigest(), "lines": len(lines) + 1}


def test_echo_content_length_then_eof(srv):
    r = srv.post("/edge?t=echo_cl", BODY)
    assert r.body == BODY
    assert r.header("X-Read-Len") == str(len(BODY))
    assert r.header("X-After-Len") == "0"  # read() after the full body: b""


def test_chunked_environ_has_no_content_length(srv):
    r = srv.post("/edge?t=headers", [b"abc"], chunked=True)
    env = r.json()
    assert r.status == 200
    assert "CONTENT_LENGTH" not in env  # the app must read to EOF
    assert env["HTTP_TRANSFER_ENCODING"] == "chunked"


def test_chunked_without_directive_is_411(srv):
    mark = srv.log_mark()
    r = srv.post("/nochunk?t=echo", [b"abc"], chunked=True)
    assert r.status == 411
    # mod_wsgi: "Received request requiring chunked transfer encoding, but
    # optional support for chunked transfer encoding has not been enabled."
    srv.wait_for_log(re.compile(r"chunked", re.I), since=mark)
    # a Content-Length body is fine on the same mount
    assert srv.post("/nochunk?t=echo", b"abc").body == b"abc"


def test_expect_100_continue(srv):
    with srv.connect(timeout=5) as s:
        s.sendall(b"POST /edge?t=echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        interim = s.recv(1000)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(b"hello")
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\nhello")


def test_invalid_content_length_is_400(srv):
    r = srv.request("POST", "/edge?t=echo", headers={"Content-Length": "abc"}, body=b"abc")
    assert r.status == 400


# --------------------------------------------------------------------------
# write() callable and iterables


def test_write_callable_then_iterable(srv):
    r = srv.get("/edge?t=write")
    assert r.status == 200
    assert r.body == b"one,two,three"
    assert r.complete


def test_write_only_with_content_length(srv):
    r = srv.get("/edge?t=write_only")
    assert r.status == 200 and r.body == b"abcdefghi"
    assert r.header("Content-Length") == "9"


def test_empty_strings_in_iterable(srv):
    r = srv.get("/edge?t=emptystrings")
    assert r.status == 200 and r.body == b"ab" and r.complete


def test_generator_streams(srv):
    r = srv.get("/edge?t=generator_slow&n=4&s=0.05&size=3")
    assert r.status == 200
    assert r.body == b"0:xxx\n1:xxx\n2:xxx\n3:xxx\n"
    assert r.chunked and r.chunked_terminated


@pytest.mark.modwsgi_daemon_bug("repeated headers are merged into one line (except Set-Cookie)")
def test_multiple_set_cookie_kept_separate(srv):
    r = srv.get("/edge?t=multi_cookie")
    assert r.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    assert r.header_all("X-Dup") == ["one", "two"]


def test_status_reason_passed_verbatim(srv):
    r = srv.get("/edge?t=status_lower")
    assert (r.status, r.reason) == (200, "ok")
    r = srv.get("/edge?t=status_custom")
    assert (r.status, r.reason) == (418, "I'm A Teapot")


def test_latin1_header_value(srv):
    r = srv.get("/edge?t=latin1")
    assert r.status == 200
    assert r.header("X-Latin1") == "caf\u00e9"  # sent as the single byte 0xE9
    assert b"X-Latin1: caf\xe9\r\n" in r.raw


# --------------------------------------------------------------------------
# close()


def _wait_closed(srv, ident, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        body = srv.get(f"/edge?t=closed&id={ident}").body
        if body != b"not-closed" or time.monotonic() > deadline:
            return body.decode()
        time.sleep(0.1)


def test_close_called_normal(srv):
    r = srv.get("/edge?t=close&id=normal")
    assert r.status == 200
    assert r.body == b"".join(b"chunk%04d;" % i for i in range(5))
    assert _wait_closed(srv, "normal") == "closed mode=normal sent=5"


@pytest.mark.modwsgi_daemon_bug("an error after the first bytes ends the response cleanly (truncation invisible)")
def test_close_called_after_exception(srv):
    mark = srv.log_mark()
    r = srv.get("/edge?t=close&mode=raise&id=raise")
    assert r.status == 200  # headers already sent with the first chunk
    assert not r.complete  # truncated response must be detectable
    assert _wait_closed(srv, "raise") == "closed mode=raise sent=2"
    srv.wait_for_log("close-test exception mid-iteration", since=mark)


def test_close_called_on_client_disconnect(srv):
    with srv.connect() as s:
        s.sendall(srv.build_request("GET", "/edge?t=close&mode=slow&id=disconnect", keepalive=True))
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    # the app keeps yielding into a closed connection: iteration must stop
    # and close() must still be called
    state = _wait_closed(srv, "disconnect", timeout=20)
    assert state.startswith("closed mode=slow"), state
    sent = int(state.rsplit("=", 1)[1])
    assert sent < 400  # stopped early, did not run the generator to the end


# --------------------------------------------------------------------------
# exc_info


def test_exc_info_before_output_replaces_response(srv):
    r = srv.get("/edge?t=excinfo")
    assert (r.status, r.reason) == (500, "Replaced")
    assert r.header("X-Replaced") == "1"
    assert r.header("X-First") is None
    assert r.body == b"replaced by exc_info"


def test_exc_info_after_output_reraises(srv):
    r = srv.get("/edge?t=excinfo_after")
    assert r.status == 200
    assert r.body == b"first;reraised-same"


@pytest.mark.modwsgi_daemon_bug("an error after the first bytes ends the response cleanly (truncation invisible)")
def test_exc_info_after_output_propagated(srv):
    mark = srv.log_mark()
    r = srv.get("/edge?t=excinfo_after_raise")
    assert r.status == 200
    assert r.body == b"first;"
    assert not r.complete  # no terminating chunk: truncation is visible
    srv.wait_for_log("late error propagated", since=mark)


def test_exc_info_must_be_a_tuple(srv):
    r = srv.get("/edge?t=excinfo_notuple")
    assert (r.status, r.body) == (200, b"RuntimeError: exception info must be a tuple"), r


@pytest.mark.rwsgi_specific(reason="mod_wsgi only unpacks exc_info once the head is sent, so a "
                                   "2-tuple before that is accepted and ignored")
def test_exc_info_must_be_a_3_tuple(srv):
    r = srv.get("/edge?t=excinfo_short")
    assert r.status == 200, r
    assert r.body.startswith(b"TypeError:") and b"3-tuple" in r.body, r


def test_start_response_again_after_the_body_started_raises(srv):
    r = srv.get("/edge?t=twice_after_body")
    assert r.status == 200, r
    assert r.body == b"first;RuntimeError: headers have already been sent", r


# --------------------------------------------------------------------------
# wsgi.file_wrapper


def test_file_wrapper_real_file(srv):
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get("/edge?t=filewrapper")
    assert r.status == 200
    assert r.body == data
    assert r.header("Content-Length") == str(len(data))


def test_file_wrapper_offset(srv):
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get("/edge?t=filewrapper_offset&off=100")
    assert r.body == data[100:]
    assert r.header("Content-Length") == str(len(data) - 100)


@pytest.mark.parametrize("n", [10, 5000])
def test_file_wrapper_after_reads_through_the_file_object(srv, n):
    """The file object's own position counts, not its descriptor's (a buffered reader has
    read ahead of what it gave the application)."""
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get(f"/edge?t=filewrapper_after_read&n={n}")
    assert r.status == 200
    assert r.body == data[n:]
    assert r.header("Content-Length") == str(len(data) - n)


def test_file_wrapper_app_content_length_wins(srv):
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get("/edge?t=filewrapper_cl")
    assert r.header("Content-Length") == "50"
    assert r.body == data[:50]


def test_file_wrapper_filelike_fallback(srv):
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get("/edge?t=filewrapper_obj")
    assert r.status == 200
    assert r.body == data
    assert r.complete


def test_file_wrapper_keepalive_sequence(srv):
    # the fd offset handling must not break follow-up requests
    data = (srv.apps / "fw_data.txt").read_bytes()
    rs = srv.requests_keepalive([("GET", "/edge?t=filewrapper")] * 3 + [("GET", "/edge?t=filewrapper_offset&off=10")])
    assert [r.body for r in rs] == [data, data, data, data[10:]]


@pytest.mark.modwsgi_daemon_bug("daemon mode answers a Range request on a file_wrapper response with the whole file (200)")
def test_file_wrapper_range_single(srv):
    """Apache's byte-range filter answers a Range request on a file_wrapper response (the
    file and the end of the response reach it together, as with mod_wsgi)."""
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get("/edge?t=filewrapper", headers={"Range": "bytes=10-19"})
    assert r.status == 206, r
    assert r.header("Content-Range") == f"bytes 10-19/{len(data)}"
    assert r.body == data[10:20]


@pytest.mark.modwsgi_daemon_bug("daemon mode answers a Range request on a file_wrapper response with the whole file (200)")
def test_file_wrapper_range_suffix_and_unsatisfiable(srv):
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get("/edge?t=filewrapper", headers={"Range": "bytes=-5"})
    assert (r.status, r.body) == (206, data[-5:]), r
    r = srv.get("/edge?t=filewrapper", headers={"Range": f"bytes={len(data) + 10}-"})
    assert r.status == 416, r


@pytest.mark.modwsgi_daemon_bug("daemon mode answers a Range request on a file_wrapper response with the whole file (200)")
def test_file_wrapper_range_multipart(srv):
    data = (srv.apps / "fw_data.txt").read_bytes()
    r = srv.get("/edge?t=filewrapper", headers={"Range": "bytes=0-4,20-24"})
    assert r.status == 206, r
    ctype = r.header("Content-Type")
    assert ctype.startswith("multipart/byteranges; boundary="), ctype
    assert data[0:5] in r.body and data[20:25] in r.body
    assert f"content-range: bytes 0-4/{len(data)}".encode() in r.body.lower()
    assert f"content-range: bytes 20-24/{len(data)}".encode() in r.body.lower()


@pytest.mark.modwsgi_daemon_bug("daemon mode answers a Range request on a file_wrapper response with the whole file (200)")
def test_file_wrapper_range_on_offset_file(srv):
    data = (srv.apps / "fw_data.txt").read_bytes()[100:]
    r = srv.get("/edge?t=filewrapper_offset&off=100", headers={"Range": "bytes=1-3"})
    assert (r.status, r.body) == (206, data[1:4]), r


# --------------------------------------------------------------------------
# wsgi.errors, stdout, stderr


def test_errors_stdout_stderr_are_text_wrappers_over_a_binary_log(srv):
    """As in mod_wsgi 4.9: io.TextIOWrapper (utf-8, 'replace', line-buffered) whose .buffer
    takes bytes, bytearray and memoryview — what click, rich, colorama and tqdm rely on."""
    mark = srv.log_mark()
    r = srv.get("/edge?t=streams&m=W4k")
    assert r.status == 200, r
    info = json.loads(r.body)
    for label in ("errors", "stdout", "stderr"):
        assert info[label] == {"type": "_io.TextIOWrapper", "encoding": "utf-8",
                               "errors": "replace", "isatty": False,
                               "line_buffering": True, "writable": True}, info
        srv.wait_for_log(f"buffer-bytes-{label}-W4k", since=mark)
        srv.wait_for_log(f"text-{label}-W4k", since=mark)


@pytest.mark.rwsgi_specific(reason="a cost, not a behaviour: mod_wsgi's Log lacks it too")
def test_a_collected_wsgi_errors_finds_what_its_finalizer_calls(srv):
    """io.TextIOWrapper asks its buffer for _dealloc_warn when it is collected: each request's
    wsgi.errors made and cleared an AttributeError (a formatted message) without it."""
    r = srv.get("/edge?t=finalize")
    assert r.status == 200 and json.loads(r.body) == {"errors": True, "stderr": True,
                                                      "stdout": True}, r


@pytest.mark.rwsgi_specific(reason="mod_wsgi 4.9.4's Log takes only bytes (memoryview: fixed "
                                   "in 6.0.1)")
def test_stream_buffers_take_bytearray_and_memoryview(srv):
    mark = srv.log_mark()
    assert srv.get("/edge?t=streams&m=M5q&mv=1").status == 200
    for label in ("errors", "stdout", "stderr"):
        for kind in ("bytearray", "memoryview"):
            srv.wait_for_log(f"buffer-{kind}-{label}-M5q", since=mark)


def test_errors_stdout_stderr_reach_error_log(srv):
    mark = srv.log_mark()
    r = srv.get("/edge?t=errors&m=Q7x9")
    assert r.status == 200
    for marker in ("wsgi-errors-Q7x9", "stdout-print-Q7x9", "stderr-print-Q7x9", "wsgi-errors-lines-Q7x9"):
        srv.wait_for_log(marker, since=mark)
    lines = srv.error_log_since(mark).splitlines()
    wsgi_errors = [ln for ln in lines if ln.endswith("wsgi-errors-Q7x9")]
    assert wsgi_errors, lines
    # logged through the module (LogLevel wsgi:...), at error level, with the client
    assert "[wsgi:error]" in wsgi_errors[0]
    assert "127.0.0.1" in wsgi_errors[0]
    for marker in ("stdout-print-Q7x9", "stderr-print-Q7x9"):
        line = [ln for ln in lines if ln.endswith(marker)][0]
        assert "[wsgi:" in line, line


def test_errors_one_line_per_write(srv):
    mark = srv.log_mark()
    srv.get("/edge?t=errors&m=LN1")
    srv.wait_for_log("wsgi-errors-lines-LN1", since=mark)
    text = srv.error_log_since(mark)
    # each marker on its own log line, no literal "\n" left over
    assert len(re.findall(r"wsgi-errors-LN1$", text, re.M)) == 1
