"""Smoke tests under the event, worker and prefork MPMs, concurrency,
graceful restart (SIGUSR1), restart (SIGHUP) and clean shutdown."""
import threading
import time

import pytest

from harness import MPMS, start_server

CONFIG = """
WSGIScriptAlias /hello {apps}/hello.wsgi
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /edge {apps}/edge.wsgi
"""


@pytest.fixture(scope="module", params=MPMS)
def srv(request, rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, mpm=request.param, name=f"mpm-{request.param}")
    yield s
    s.stop(wait=False)


def test_hello(srv):
    r = srv.get("/hello")
    assert (r.status, r.body) == (200, b"Hello, World!")
    assert r.header("Content-Type") == "text/plain"


def test_environ(srv):
    env = srv.get("/env/x?y=1").json()
    assert env["SCRIPT_NAME"] == "/env" and env["PATH_INFO"] == "/x"
    assert env["wsgi.multithread"] is (srv.mpm != "prefork")
    assert env["wsgi.multiprocess"] is True


def test_post_echo(srv):
    data = b"payload-" * 5000
    r = srv.post("/edge?t=echo", data)
    assert r.status == 200 and r.body == data


def test_keepalive_sequence(srv):
    rs = srv.requests_keepalive([("GET", "/hello"), ("POST", "/edge?t=echo", {"body": b"abc"}),
                                 ("GET", "/hello")])
    assert [r.status for r in rs] == [200, 200, 200]
    assert rs[1].body == b"abc"


def test_concurrent_requests(srv):
    """Requests run concurrently (threads and/or processes), bodies stay with their request."""
    n_threads, per_thread = 8, 2
    results, errors = [], []

    def worker(i):
        try:
            for j in range(per_thread):
                r = srv.get("/edge?t=overlap&s=0.3", timeout=20)
                results.append((r.status, r.body))
                r = srv.post("/edge?t=echo", f"t{i}-{j}".encode(), timeout=20)
                results.append((r.status, r.body))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == n_threads * per_thread * 2
    assert all(st == 200 for st, _ in results), [r for r in results if r[0] != 200][:3]
    echoes = sorted(b for _, b in results if not b.startswith(b"peak="))
    assert echoes == sorted(f"t{i}-{j}".encode() for i in range(n_threads) for j in range(per_thread))
    # eight clients each holding a request open for 0.3 s: several must have overlapped
    peak = max(int(b.split(b"=")[1]) for _, b in results if b.startswith(b"peak="))
    assert peak >= 2, f"requests never overlapped (peak {peak})"


def test_graceful_then_serve(srv):
    before = srv.get("/edge?t=sleep&s=0").body
    srv.graceful()
    for _ in range(3):
        r = srv.get("/hello")
        assert (r.status, r.body) == (200, b"Hello, World!")
    assert srv.get("/env").json()["SCRIPT_NAME"] == "/env"
    assert before.startswith(b"slept")


def test_inflight_request_survives_graceful(srv):
    out = {}

    def slow():
        out["r"] = srv.get("/edge?t=sleep&s=1.5", timeout=20)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    srv.graceful()
    t.join(20)
    assert out["r"].status == 200
    assert out["r"].body.startswith(b"slept 1.5")
    assert srv.get("/hello").status == 200


def test_restart_then_serve(srv):
    srv.restart()
    r = srv.get("/hello")
    assert (r.status, r.body) == (200, b"Hello, World!")
    assert srv.post("/edge?t=echo", b"after restart").body == b"after restart"


@pytest.mark.parametrize("mpm", MPMS)
def test_stop_leaves_no_process(rwsgi_path, mpm):
    # %{GLOBAL}: mod_wsgi's children otherwise take ~10 s to exit (see below)
    s = start_server(rwsgi_path, CONFIG + "WSGIApplicationGroup %{GLOBAL}\n", mpm=mpm, name=f"stop-{mpm}")
    pgid = s.pgid
    assert s.get("/hello").status == 200
    assert s.child_pids()
    s.stop()
    from harness import _pids_in_group

    assert _pids_in_group(pgid) == []
    assert not s.running


@pytest.mark.rwsgi_specific(
    reason="mod_wsgi 4.9.4 (Python 3.11, threaded MPM) hangs in 'End interpreter' when a child "
           "that served a sub-interpreter app exits; Apache SIGKILLs it after ~10 s "
           "(AH00045/AH00046 'still did not exit')",
    strict=False)
def test_clean_fast_shutdown(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, mpm="event", name="shutdown")
    for _ in range(4):
        assert s.get("/hello").status == 200
        assert s.get("/env").status == 200
    s.stop()
    assert "still did not exit" not in s.final_error_log, s.final_error_log[-3000:]
    assert s.stop_seconds < 5, f"stop took {s.stop_seconds:.1f}s"
