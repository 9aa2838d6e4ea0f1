"""Daemon mode: WSGIDaemonProcess groups serving requests forwarded by Apache children, their
supervision (crashes, kills, maximum-requests), privilege drop, and the failure cases where
mod_wsgi's daemon mode is known to misbehave."""
import os
import pwd
import re
import signal
import time

import pytest

from harness import start_server

CONFIG = """
WSGIDaemonProcess grp processes=2 threads=4 maximum-requests=0
WSGIDaemonProcess small threads=2 maximum-requests=3
WSGIDaemonProcess nobody user=nobody group=nogroup threads=2
WSGIDaemonProcess single threads=2
WSGIChunkedRequest On
WSGIScriptAlias /env {apps}/environ.wsgi process-group=grp application-group=%{GLOBAL}
WSGIScriptAlias /edge {apps}/edge.wsgi process-group=grp application-group=%{GLOBAL}
WSGIScriptAlias /probe {apps}/daemon_probe.wsgi process-group=grp application-group=%{GLOBAL}
WSGIScriptAlias /small {apps}/daemon_probe.wsgi process-group=small application-group=%{GLOBAL}
WSGIScriptAlias /nobody {apps}/daemon_probe.wsgi process-group=nobody application-group=%{GLOBAL}
WSGIScriptAlias /emb {apps}/daemon_probe.wsgi
WSGIScriptAlias /reload {apps}/reload.wsgi process-group=single application-group=%{GLOBAL}
"""


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, name="daemon")
    yield s
    s.stop(wait=False)


def _probe(srv, path="/probe", **kw):
    r = srv.get(path, **kw)
    assert r.status == 200, (r.status, r.body[:300], srv.error_log()[-2000:])
    return r.json()


def test_requests_run_in_daemon_processes(srv):
    d = _probe(srv)
    e = _probe(srv, "/emb")
    assert d["process_group"] == "grp" and e["process_group"] == ""
    daemon_pids = {_probe(srv)["pid"] for _ in range(6)}
    embedded_pids = {_probe(srv, "/emb")["pid"] for _ in range(6)}
    assert d["pid"] != e["pid"] and not daemon_pids & embedded_pids
    assert d["multiprocess"] is True and d["multithread"] is True


@pytest.mark.parametrize("path,group", [("/probe", "grp"), ("/emb", "")])
def test_applications_can_import_mod_wsgi(srv, path, group):
    m = _probe(srv, path + "?t=module")
    # both run in the main interpreter: /probe by application-group=%{GLOBAL}, /emb as the
    # only embedded mount
    assert m == {"process_group": group, "application_group": "", "version": [4, 9, 4]}


def test_environ_matches_embedded_except_process_group(srv):
    env = srv.get("/env/x?y=1").json()
    assert env["mod_wsgi.process_group"] == "grp"
    assert env["SCRIPT_NAME"] == "/env" and env["PATH_INFO"] == "/x" and env["QUERY_STRING"] == "y=1"
    assert env["wsgi.input_terminated"] is True and env["wsgi.version"] == [1, 0]


def test_post_bodies(srv):
    body = os.urandom(1024 * 1024 + 7)
    r = srv.post("/edge?t=echo", body, timeout=30)
    assert r.status == 200 and r.body == body
    r = srv.post("/edge?t=echo", b"chunked body " * 1000, chunked=True, timeout=30)
    assert r.status == 200 and r.body == b"chunked body " * 1000


def test_readline_and_iteration(srv):
    data = b"line1\nline2longer\n\nlast"
    r = srv.post("/edge?t=readline_n", data)
    assert r.status == 200
    assert r.json() == ["line1", "\n", "line2", "longe", "r\n", "\n", "last"]


def test_file_wrapper(srv):
    r = srv.get("/edge?t=filewrapper")
    ref = (srv.apps / "fw_data.txt").read_bytes()
    assert r.status == 200 and r.body == ref
    assert r.header("Content-Length") == str(len(ref))


def test_streaming_response(srv):
    r = srv.get("/edge?t=generator_slow", timeout=30)
    assert r.status == 200 and r.chunked and r.chunked_terminated


def test_errors_reach_the_error_log(srv):
    mark = srv.log_mark()
    assert srv.get("/edge?t=exc_before").status == 500
    srv.wait_for_log("Exception occurred processing WSGI script", since=mark)


@pytest.mark.rwsgi_specific(reason="Debian's mod_wsgi 4.9.4 starts the user=nobody process but it "
                                   "never answers in this harness", strict=False)
def test_privileges_dropped(srv):
    d = _probe(srv, "/nobody")
    nobody = pwd.getpwnam("nobody")
    assert (d["uid"], d["euid"]) == (nobody.pw_uid, nobody.pw_uid)
    assert d["gid"] == d["egid"] != 0
    assert 0 not in d["groups"]
    r = srv.get("/nobody?t=root")
    assert r.body.startswith(b"refused"), r.body


def test_maximum_requests_recycles(srv):
    pids = [_probe(srv, "/small")["pid"] for _ in range(7)]
    assert len(set(pids)) >= 2, pids


@pytest.mark.rwsgi_specific(reason="mod_wsgi answers 500 for a daemon that died mid-request")
def test_process_exit_gives_502_then_recovers(srv):
    mark = srv.log_mark()
    r = srv.get("/probe?t=exit")
    assert r.status == 502
    # the Apache side names the cause, as the supervisor found it (daemon_probe exits with 3)
    srv.wait_for_log(re.compile(r"daemon process \d+ of group 'grp' exited with status 3 "
                                r"\(the application ended the process: sys.exit or os._exit\), "
                                r"while serving GET /probe"), since=mark)
    assert b"The WSGI daemon process serving this request exited." in r.body
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if srv.get("/probe").status == 200:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the group did not recover")


@pytest.mark.rwsgi_specific(reason="mod_wsgi answers 500 ('Truncated or oversized response headers')")
def test_sigkill_mid_request_gives_502(srv):
    import threading
    pid = _probe(srv)["pid"]
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", srv.get("/probe?t=sleep&s=3", timeout=20)))
    t.start()
    time.sleep(0.5)
    # the sleeping request may be in either process of the group: kill both
    for p in {pid, _probe(srv)["pid"]}:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    t.join(20)
    assert result["r"].status in (502, 200)  # 200 if it ran in a process we did not catch
    t0 = time.monotonic()
    while srv.get("/probe").status != 200:
        assert time.monotonic() - t0 < 5, "no recovery"
        time.sleep(0.05)


@pytest.mark.rwsgi_specific(reason="mod_wsgi's daemon mode ends a response cleanly (0-chunk) "
                                   "after an application error, hiding the truncation")
def test_exception_after_body_started_is_visible(srv):
    r = srv.get("/edge?t=exc_after", timeout=10)
    assert r.status == 200
    assert r.chunked and not r.chunked_terminated


@pytest.mark.rwsgi_specific(reason="mod_wsgi pushes the whole body before reading the response "
                                   "and stalls until Timeout")
def test_large_response_to_unread_large_body_does_not_stall(srv):
    # A client that uploads and reads at the same time (as browsers and curl do): the only
    # way to stall is inside the server, between the Apache child and the daemon.
    import socket
    import threading
    n, upload = 8 * 1024 * 1024, 20 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    s.sendall(b"POST /probe?t=bigresp_noread&n=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (n, upload))

    def send_body():
        try:
            s.sendall(b"u" * upload)
        except OSError:
            pass  # the server may close after responding without reading it all

    threading.Thread(target=send_body, daemon=True).start()
    data = b""
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pytest.fail(f"stalled after {len(data)} bytes")
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert len(body) == n


@pytest.mark.rwsgi_specific(reason="mod_wsgi's daemon mode refuses header lines over 32 KiB "
                                   "and merges repeated headers; embedded mode does neither")
def test_headers_as_in_embedded_mode(srv):
    r = srv.get("/edge?t=bighdr&n=40000")
    assert r.status == 200 and len(r.header("X-Big")) == 40000
    r = srv.get("/edge?t=multi_cookie")
    assert r.status == 200
    assert len(r.header_all("Set-Cookie")) == 2
    assert len(r.header_all("X-Dup")) == 2


# --------------------------------------------------------------------------
# timeouts, restarts and access control (each with a server of its own)

TIMEOUTS = """
WSGIDaemonProcess slow threads=1 request-timeout=1 graceful-timeout=1
WSGIDaemonProcess queue threads=1 queue-timeout=1
WSGIDaemonProcess gone threads=1 connect-timeout=1 python-home=/nonexistent/python
WSGIDaemonProcess wedged threads=2 deadlock-timeout=2
WSGIScriptAlias /wedged {apps}/daemon_probe.wsgi process-group=wedged application-group=%{GLOBAL}
WSGIScriptAlias /slow {apps}/daemon_probe.wsgi process-group=slow application-group=%{GLOBAL}
WSGIScriptAlias /queue {apps}/daemon_probe.wsgi process-group=queue application-group=%{GLOBAL}
WSGIScriptAlias /gone {apps}/daemon_probe.wsgi process-group=gone application-group=%{GLOBAL}
WSGIDaemonProcess grp threads=2
WSGIScriptAlias /grp {apps}/daemon_probe.wsgi process-group=grp application-group=%{GLOBAL}
"""


@pytest.fixture(scope="module")
def tsrv(rwsgi_path):
    s = start_server(rwsgi_path, TIMEOUTS, name="daemon-timeouts")
    yield s
    s.stop(wait=False)


@pytest.mark.rwsgi_specific(reason="mod_wsgi 4.9 restarts the process but answers 500/502")
def test_request_timeout_gives_504_and_restarts(tsrv):
    before = _probe(tsrv, "/slow")["pid"]
    mark = tsrv.log_mark()
    r = tsrv.get("/slow?t=sleep&s=30", timeout=20)
    assert r.status == 504
    tsrv.wait_for_log("request-timeout", since=mark)
    t0 = time.monotonic()
    while True:
        r = tsrv.get("/slow")
        if r.status == 200:
            break
        assert time.monotonic() - t0 < 10
        time.sleep(0.1)
    assert r.json()["pid"] != before


@pytest.mark.rwsgi_specific(reason="mod_wsgi answers 504 when queue-timeout sheds a request")
def test_queue_timeout_sheds_with_503(tsrv):
    import threading
    _probe(tsrv, "/queue")
    busy = threading.Thread(target=lambda: tsrv.get("/queue?t=sleep&s=3", timeout=20))
    busy.start()
    time.sleep(0.3)
    r = tsrv.get("/queue", timeout=20)  # waits for the only thread, longer than 1 s
    busy.join()
    assert r.status == 503


def test_graceful_restart_completes_inflight_request(tsrv):
    import threading
    _probe(tsrv, "/grp")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", tsrv.get("/grp?t=sleep&s=3", timeout=30)))
    t.start()
    time.sleep(0.5)
    tsrv.graceful()
    t.join(30)
    assert result["r"].status == 200, result["r"]
    assert _probe(tsrv, "/grp")["process_group"] == "grp"


@pytest.mark.rwsgi_specific(reason="mod_wsgi 4.9.4 keeps its sockets outside the server root "
                                   "(its own default prefix), where this test does not look")
def test_socket_is_private_to_apache(tsrv):
    socks = list(tsrv.root.rglob("*.sock"))
    assert socks, list(tsrv.root.rglob("*"))
    for s in socks:
        st = s.stat()
        assert st.st_mode & 0o077 == 0, oct(st.st_mode)  # nobody but the owner
        assert st.st_uid == pwd.getpwnam("www-data").pw_uid
    # another user cannot even connect
    import subprocess
    code = ("import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET);"
            "s.connect(sys.argv[1])")
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "/usr/bin/python3.11", "-c", code, str(socks[0])], capture_output=True, text=True)
    assert p.returncode != 0 and "PermissionError" in p.stderr, p.stderr


@pytest.mark.rwsgi_specific(reason="rwsgi's protocol (HELLO with a per-group secret)")
def test_connection_without_the_secret_is_refused(tsrv):
    import socket
    import struct
    _probe(tsrv, "/grp")
    mark = tsrv.log_mark()
    import hashlib
    refused = 0
    # the groups whose processes run ('gone' has none: its socket only queues connections)
    running = {hashlib.md5(g.encode()).hexdigest()[:12] for g in ("slow", "queue", "grp", "wedged")}
    for sock_path in tsrv.root.rglob("*.sock"):
        if sock_path.name.split(".")[-2] not in running:
            continue
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(5)
        s.connect(str(sock_path))
        # a well-formed HELLO frame (magic, version 1, kind 1) with a wrong secret
        payload = b"x" * 32
        s.send(struct.pack("<HBBHHII", 0x5752, 1, 1, 0, 0, 0, len(payload)) + payload)
        assert s.recv(100) == b""  # closed, no HelloAck
        s.close()
        refused += 1
    assert refused
    tsrv.wait_for_log("refused a connection", since=mark)


@pytest.mark.rwsgi_specific(reason="mod_wsgi answers a group that cannot start with 500 after its own timeout")
def test_a_group_that_cannot_start_gives_503_after_connect_timeout(tsrv):
    """Its processes die at start (python-home does not exist): requests wait connect-timeout
    for one to answer, then get 503; the supervisor keeps trying, with a growing delay."""
    t0 = time.monotonic()
    r = tsrv.get("/gone", timeout=10)
    assert r.status == 503, r
    assert 0.9 < time.monotonic() - t0 < 5
    tsrv.wait_for_log("Unable to connect to WSGI daemon process 'gone'")
    tsrv.wait_for_log("cannot initialise Python")
    tsrv.wait_for_log("of group 'gone' could not start")


def test_touching_the_script_restarts_the_daemon_process(srv):
    path = srv.apps / "reload.wsgi"
    original = path.read_text()
    try:
        r1 = srv.get("/reload")
        assert r1.status == 200 and r1.body.startswith(b"version=v1 ")
        assert srv.get("/reload").body == r1.body  # one process, no reload without a change
        path.write_text(original.replace('VERSION = "v1"', 'VERSION = "v2"'))
        st = os.stat(path)
        os.utime(path, (st.st_atime, st.st_mtime + 5))
        r2 = srv.get("/reload")
        assert r2.status == 200 and r2.body.startswith(b"version=v2 "), r2.body
        # a new process, not a re-import in the old one (as mod_wsgi in daemon mode)
        assert r2.body.split(b"pid=")[1] != r1.body.split(b"pid=")[1]
    finally:
        path.write_text(original)


@pytest.mark.rwsgi_specific(reason="mod_wsgi restarts the process too, but answers 500")
def test_deadlock_timeout_restarts_a_wedged_process(tsrv):
    before = _probe(tsrv, "/wedged")["pid"]
    mark = tsrv.log_mark()
    r = tsrv.get("/wedged?t=gil_hold&s=30", timeout=20)
    assert r.status == 502
    tsrv.wait_for_log("deadlock-timeout", since=mark)
    t0 = time.monotonic()
    while tsrv.get("/wedged").status != 200:
        assert time.monotonic() - t0 < 10
        time.sleep(0.1)
    assert _probe(tsrv, "/wedged")["pid"] != before


def test_environ_does_not_leak_between_requests(srv):
    # Apache threads reuse their daemon connection: nothing of one request may reach the next.
    with srv.keepalive() as conn:
        for _ in range(4):
            a = conn.get("/env/", headers=[("X-Secret", "s3cret")]).json()
            assert a["HTTP_X_SECRET"] == "s3cret"
            b = conn.get("/env/").json()
            assert "HTTP_X_SECRET" not in b
            assert not any("s3cret" in str(v) for v in b.values())
