"""Trust boundaries (the "Security" section of the README): what application code can and
cannot reach, in embedded and daemon mode.

1. Request-bound objects kept past their request (wsgi.errors in a logging handler, a
   background thread, a kept wsgi.input / start_response / write) raise mod_wsgi's
   RuntimeError; they never reach the ended request (embedded: a segfault of the Apache
   child) nor its daemon connection (daemon: a hang of the next request).
"""
import os
import time

import pytest

from harness import start_server

STALE = """
WSGIDaemonProcess stale threads=4
WSGIScriptAlias /emb {apps}/stale.wsgi
WSGIScriptAlias /dmn {apps}/stale.wsgi process-group=stale
"""


@pytest.fixture(scope="module")
def stale_srv(rwsgi_path):
    s = start_server(rwsgi_path, STALE, name="stale")
    yield s
    s.stop()


EXPIRED_REQUEST = "RuntimeError: request object has expired"
EXPIRED_LOG = "RuntimeError: log object has expired"


@pytest.mark.parametrize("mount", ["/emb", "/dmn"])
def test_kept_request_objects_raise_and_never_crash(stale_srv, mount):
    srv = stale_srv
    mark = srv.log_mark()
    # One persistent connection: in embedded mode the same Apache child serves every request,
    # so the background thread and the kept objects live in the process under test.
    with srv.keepalive() as c:
        assert c.get(mount + "/keep").body == b"kept"
        deadline = time.monotonic() + 5
        seen = None
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            r = c.get(mount + "/use")
            # daemon mode: a thread writing to a kept wsgi.errors once made the next request
            # on that connection wait for Apache's Timeout
            assert time.monotonic() - t0 < 3, "request after stale writes was slow"
            assert r.status == 200, (r.status, r.body[:300], srv.error_log_since(mark)[-3000:])
            seen = r.json()
            if seen["thread"]:
                break
            time.sleep(0.05)
    assert seen["errors"] == EXPIRED_LOG, seen
    assert seen["errors_flush"] == EXPIRED_LOG, seen
    assert seen["input"] == EXPIRED_REQUEST, seen
    assert seen["readline"] == EXPIRED_REQUEST, seen
    assert seen["start_response"] == EXPIRED_REQUEST, seen
    assert seen["write"] == EXPIRED_REQUEST, seen
    # the background thread: every write after the first request ended raised (the first
    # writes may still have landed while that request was running)
    assert EXPIRED_LOG in seen["thread"], seen
    assert set(seen["thread"]) <= {"ok", EXPIRED_LOG}, seen
    # more requests on fresh connections while the thread keeps writing
    for _ in range(10):
        assert srv.get(mount + "/plain").body == b"plain"
    log = srv.error_log_since(mark)
    assert "exit signal" not in log, log[-3000:]
    assert "Segmentation fault" not in log, log[-3000:]


# --------------------------------------------------------------------------
# 6. The Apache side trusts nothing a daemon sends.

HOSTILE = """
WSGIDaemonProcess hostile processes=1 threads=1
WSGIDaemonProcess healthy threads=2
WSGIScriptAlias /hostile {apps}/hostile_frames.wsgi process-group=hostile application-group=%{GLOBAL}
WSGIScriptAlias /deflated {apps}/hostile_frames.wsgi process-group=hostile application-group=%{GLOBAL}
WSGIScriptAlias /healthy {apps}/hello.wsgi process-group=healthy
<Location /deflated>
    SetOutputFilter DEFLATE
</Location>
"""


@pytest.fixture(scope="module")
def hostile_srv(rwsgi_path):
    s = start_server(rwsgi_path, HOSTILE, name="hostile", load_modules=["deflate"])
    yield s
    s.stop()


def apache_children(srv):
    """The Apache children (not the daemon processes, which share the process group)."""
    out = []
    for pid in srv.child_pids():
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if comm == "apache2" and ppid == srv.pid:
            out.append(pid)
    return sorted(out)


def _hostile(srv, case, path="/hostile", **kw):
    mark = srv.log_mark()
    children = apache_children(srv)
    r = srv.get(path + "?" + case, timeout=15, **kw)
    # the Apache children live (none died and was replaced) and serve the next request
    assert srv.get("/healthy").status == 200
    assert apache_children(srv) == children
    log = srv.error_log_since(mark)
    assert "exit signal" not in log, log[-3000:]
    return r, log


@pytest.mark.rwsgi_specific("mod_wsgi relays framing headers from its daemons")
def test_hop_by_hop_headers_from_a_daemon_are_dropped(hostile_srv):
    r, log = _hostile(hostile_srv, "framing")
    assert r.status == 200 and r.body == b"hello" and r.complete, r
    assert not r.chunked, r
    assert r.header("Content-Length") == "5", r
    for name in ("Upgrade", "TE", "Trailer", "Transfer-Encoding"):
        assert r.header(name) is None, r
    assert r.header("Keep-Alive") != "timeout=99", r
    assert "hop-by-hop header(s) Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer" in log


def test_connection_close_from_a_daemon_closes_the_client_connection(hostile_srv):
    r, _ = _hostile(hostile_srv, "close")
    assert r.status == 200 and r.body == b"hello", r
    assert r.header("Connection") == "close" and r.closed, r


@pytest.mark.rwsgi_specific("mod_wsgi passes unusable Content-Length values on")
@pytest.mark.parametrize("case", ["negative-length", "text-length", "two-lengths"])
def test_unusable_content_length_from_a_daemon_is_a_502(hostile_srv, case):
    r, log = _hostile(hostile_srv, case)
    assert r.status == 502, r
    assert "invalid response head from daemon process 'hostile'" in log, log[-2000:]


@pytest.mark.rwsgi_specific("mod_wsgi relays whatever its daemon sends")
def test_a_body_never_exceeds_its_declared_length(hostile_srv):
    r, log = _hostile(hostile_srv, "overlong")
    assert r.status == 200 and r.body == b"hello" and r.complete and not r.trailing, r
    assert "sent more than the Content-Length it declared" in log


def test_a_short_body_is_visibly_broken(hostile_srv):
    r, log = _hostile(hostile_srv, "short")
    assert r.status == 200 and not r.complete and r.closed, r


def test_a_file_truncated_under_mod_deflate_does_not_kill_the_child(hostile_srv):
    """The daemon passes a 256 MiB file for sendfile and truncates it while mod_deflate reads
    it: a memory-mapped read would SIGBUS the Apache child."""
    r, log = _hostile(hostile_srv, "truncated-file", path="/deflated",
                      headers={"Accept-Encoding": "gzip"})
    assert not r.complete or r.status >= 500, r
    # Apache reaps a dead child within its one-second maintenance interval
    time.sleep(1.2)
    assert "exit signal" not in hostile_srv.error_log_since(0), hostile_srv.error_log()[-3000:]


# --------------------------------------------------------------------------
# 7. No panic escapes any thread.

PANIC = """
WSGIDaemonProcess p threads=2 graceful-timeout=20
WSGIScriptAlias /p {apps}/daemon_probe.wsgi process-group=p application-group=%{GLOBAL}
"""


@pytest.mark.rwsgi_specific("a test-only switch of rwsgi's daemon")
def test_a_panic_in_a_daemon_request_thread_costs_one_500(rwsgi_path):
    srv = start_server(rwsgi_path, PANIC, name="panic",
                       env={"RWSGI_TEST_PANIC_URI": "/p/boom"})
    try:
        pid = srv.get("/p?t=id").json()["pid"]
        # more panics than threads: each thread survives its panic and serves again
        for _ in range(5):
            r = srv.get("/p/boom")
            assert r.status == 500, r
            ok = srv.get("/p?t=id")
            assert ok.status == 200 and ok.json()["pid"] == pid, ok
        log = srv.error_log()
        assert log.count("internal error in daemon process 'p' while serving a request: "
                         "test-only panic (RWSGI_TEST_PANIC_URI)") == 5, log[-3000:]
        # in-flight accounting stayed right: a graceful restart does not wait graceful-timeout
        # for requests that ended in a panic
        t0 = time.monotonic()
        srv.graceful()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
            time.sleep(0.05)
        assert not os.path.exists("/proc/%d" % pid), "daemon process waited for phantom requests"
        assert time.monotonic() - t0 < 10
    finally:
        srv.stop()
