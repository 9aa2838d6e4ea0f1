"""Daemon mode, bulk data: request and response bodies (and oversized request heads) travel
through the per-connection shared-memory rings, byte-exact, in every size and interleaving,
including rings smaller than the body (response-buffer-size) so slices wrap and wait for
credit."""
import hashlib
import os
import time

import pytest

from harness import start_server

CONFIG = """
WSGIDaemonProcess bulk threads=2
WSGIDaemonProcess tiny threads=2 response-buffer-size=65536
WSGIScriptAlias /bulk {apps}/bulk.wsgi process-group=bulk application-group=%{GLOBAL}
WSGIScriptAlias /tiny {apps}/bulk.wsgi process-group=tiny application-group=%{GLOBAL}
WSGIDaemonProcess seq threads=2
WSGIScriptAlias /seq {apps}/bulk.wsgi process-group=seq application-group=%{GLOBAL}
LimitRequestFieldSize 16380
WSGIChunkedRequest On
"""


def pattern(n, seed):
    block = b"".join(hashlib.sha256(b"%d:%d" % (seed, i)).digest() for i in range(64))
    return (block * (n // len(block) + 1))[:n]


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, name="rings")
    yield s
    s.stop(wait=False)


@pytest.mark.parametrize("mount", ["/bulk", "/tiny"])
def test_daemon_maps_both_rings(srv, mount):
    r = srv.get(mount + "?t=maps")
    assert r.status == 200, srv.error_log()[-2000:]
    names = r.body.decode().split("\n")
    assert any("rwsgi-request" in n for n in names), names
    assert any("rwsgi-response" in n for n in names), names


@pytest.mark.parametrize("mount", ["/bulk", "/tiny"])
@pytest.mark.parametrize("size", [0, 1, 16383, 16384, 65535, 65536, 300001, 3 * 1024 * 1024 + 5])
def test_echo_is_byte_exact(srv, mount, size):
    body = os.urandom(size)
    r = srv.post(mount + "?t=echo", body, timeout=60)
    assert r.status == 200, (r.status, srv.error_log()[-2000:])
    assert r.header("X-Sha256") == hashlib.sha256(body).hexdigest()
    assert r.body == body


@pytest.mark.parametrize("chunk", [1000, 16384, 70000, 1 << 20])
def test_echo_in_reads_of_any_size(srv, chunk):
    body = os.urandom(2 * 1024 * 1024 + 3)
    r = srv.post("/tiny?t=echo&c=%d" % chunk, body, timeout=60)
    assert r.status == 200 and r.body == body


def test_chunked_upload_through_the_ring(srv):
    parts = [os.urandom(n) for n in (5, 40000, 1, 200000, 17000)]
    r = srv.post("/bulk?t=echo", parts, chunked=True, timeout=30)
    assert r.status == 200 and r.body == b"".join(parts)


@pytest.mark.parametrize("mount", ["/bulk", "/tiny"])
def test_generator_chunks_of_mixed_sizes(srv, mount):
    sizes = [1, 20000, 300000, 16383, 16384, 5, 65536, 1048576, 0, 70000, 2]
    r = srv.get(mount + "?t=gen&sizes=" + ",".join(map(str, sizes)), timeout=60)
    assert r.status == 200
    assert r.body == b"".join(pattern(n, i) for i, n in enumerate(sizes))


@pytest.mark.parametrize("mount", ["/bulk", "/tiny"])
def test_write_then_read_interleaves_credit_and_body(srv, mount):
    body = os.urandom(400000)
    r = srv.post(mount + "?t=write_read&n=300000", body, timeout=60)
    assert r.status == 200
    assert r.body == pattern(300000, 7) + body + pattern(300000, 8)


def test_keepalive_connections_reuse_rings_across_requests(srv):
    reqs = []
    bodies = [os.urandom(n) for n in (70000, 10, 200000, 0, 1 << 20)]
    for b in bodies:
        reqs.append(("POST", "/tiny?t=echo", {"body": b}))
    for r, b in zip(srv.requests_keepalive(reqs, timeout=60), bodies):
        assert r.status == 200 and r.body == b


def test_request_head_larger_than_a_frame(srv):
    # ~600 KiB of headers: more than a frame and more than the response ring, so the head goes
    # whole through the (1 MiB) request ring
    headers = [("X-Big-%d" % i, "h" * 15000) for i in range(40)]
    r = srv.get("/tiny?t=headers", headers=headers, timeout=30)
    assert r.status == 200, srv.error_log()[-2000:]
    assert r.body == b"600000"


@pytest.mark.parametrize("mount", ["/bulk", "/tiny"])
def test_ring_pages_are_given_back_once_idle(srv, mount):
    # Shared memory counts in RSS (socket buffers do not): rings keep their pages while their
    # connection is busy (refaulting them per request cost ~20 % of a daemon's CPU for 1 MiB
    # bodies) and give them back once it has been idle for 2 s.
    for _ in range(4):
        r = srv.post(mount + "?t=echo", os.urandom(3 * 1024 * 1024), timeout=60)
        assert r.status == 200
    assert _ring_rss_once_idle(srv, mount) == "0"


def _ring_rss_once_idle(srv, mount, wait=8):
    """The daemon's resident ring KiB, polled until 0 or `wait` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        r = srv.get(mount + "?t=maps")
        assert r.status == 200
        rss = r.header("X-Ring-Rss-KiB")
        if rss == "0" or time.monotonic() > deadline:
            return rss
        time.sleep(0.5)


def test_busy_rings_keep_their_pages(srv):
    # back-to-back requests on one keep-alive connection: the second finds the pages the
    # first touched still resident (the daemon reports its rings' RSS before reading the body)
    assert _ring_rss_once_idle(srv, "/bulk") == "0"
    body = os.urandom(1024 * 1024)
    with srv.keepalive(timeout=60) as c:
        first = c.post("/bulk?t=echo_rss", body)
        second = c.post("/bulk?t=echo_rss", body)
    assert first.status == 200 and first.body == body
    assert second.status == 200 and second.body == body
    assert int(second.header("X-Ring-Rss-KiB")) > 0, second.headers


def test_connections_follow_requests_in_flight_not_apache_threads(srv):
    # mpm_event hands each request to any of a child's worker threads: a connection (and its
    # rings, resident while in use) per Apache thread would make one per worker that ever
    # served the group. An Apache child shares its connections: one client's requests, one
    # after the other on fresh TCP connections, need one connection per child.
    body = os.urandom(100000)
    for _ in range(30):
        r = srv.post("/seq?t=echo", body, timeout=30)
        assert r.status == 200 and r.body == body
    r = srv.get("/seq?t=rings")
    assert r.status == 200
    assert 1 <= int(r.body) <= 2, r.body  # two Apache children (harness: StartServers 2)
