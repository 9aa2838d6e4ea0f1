"""glibc malloc in the processes that run Python: request bodies up to 2 MiB come from the arenas
(unless the admin sets MALLOC_MMAP_THRESHOLD_), two arenas per core (2 to 8) unless the admin
sets MALLOC_ARENA_MAX (glibc's default of up to 8 per core let each of Apache's or a daemon's
many threads keep its own arena's worth of freed memory: embedded RSS kept growing in steps).
A daemon process gives freed heap back once its load shrinks or it goes idle."""
import concurrent.futures
import os
import re
import time

import pytest

from harness import start_server

CONFIG = """
WSGIScriptAlias /emb {apps}/arenas.wsgi
WSGIDaemonProcess many threads=12
WSGIScriptAlias /daemon {apps}/arenas.wsgi process-group=many application-group=%{GLOBAL}
WSGIScriptAlias /churn {apps}/heap_churn.wsgi process-group=many application-group=%{GLOBAL}
WSGIScriptAlias /body-emb {apps}/body_block.wsgi
WSGIScriptAlias /body-daemon {apps}/body_block.wsgi process-group=many
WSGIScriptAlias /arenas-emb {apps}/arena_churn.wsgi
WSGIScriptAlias /arenas-daemon {apps}/arena_churn.wsgi process-group=many
"""


def cap():
    return min(max(2 * len(os.sched_getaffinity(0)), 2), 8)


def heaps_under_load(srv, path):
    """Arena counts reported while 16 requests at a time keep every thread busy."""
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        rs = list(ex.map(lambda _: srv.get(path), range(96)))
    assert all(r.status == 200 for r in rs), srv.error_log()[-2000:]
    return {int(r.body) for r in rs}


@pytest.mark.rwsgi_specific("mod_wsgi leaves glibc's default (up to 8 arenas per core)")
@pytest.mark.parametrize("path", ["/emb", "/daemon"])
def test_arenas_are_capped_at_two_per_core(rwsgi_path, path):
    srv = start_server(rwsgi_path, CONFIG, name="arenas")
    try:
        counts = heaps_under_load(srv, path)
        assert max(counts) <= cap(), counts
    finally:
        srv.stop()


@pytest.mark.rwsgi_specific("mod_wsgi leaves glibc's default")
@pytest.mark.parametrize("path", ["/emb", "/daemon"])
def test_malloc_arena_max_set_by_the_admin_wins(rwsgi_path, path):
    srv = start_server(rwsgi_path, CONFIG, name="arenas-admin", env={"MALLOC_ARENA_MAX": "1"})
    try:
        assert heaps_under_load(srv, path) == {1}
    finally:
        srv.stop()


def body_blocks(srv, path):
    """Where each of a few 1 MiB request bodies was allocated ("arena" or "mmap")."""
    body = b"x" * (1 << 20)
    seen = set()
    for _ in range(4):
        r = srv.request("POST", path, body=body)
        assert r.status == 200, srv.error_log()[-2000:]
        where, n = r.body.decode().split()
        assert int(n) == len(body)
        seen.add(where)
    return seen


@pytest.mark.rwsgi_specific("mod_wsgi leaves glibc's default: bodies above 128 KiB are mmapped")
@pytest.mark.parametrize("path", ["/body-emb", "/body-daemon"])
def test_request_bodies_come_from_the_arenas(rwsgi_path, path):
    """A 1 MiB body mmapped and unmapped on every request faulted in 256 fresh pages."""
    srv = start_server(rwsgi_path, CONFIG, name="body-blocks")
    try:
        assert body_blocks(srv, path) == {"arena"}
    finally:
        srv.stop()


@pytest.mark.parametrize("path", ["/body-emb", "/body-daemon"])
def test_a_malloc_threshold_set_by_the_admin_wins(rwsgi_path, path):
    srv = start_server(rwsgi_path, CONFIG, name="body-blocks-admin",
                       env={"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)})
    try:
        assert body_blocks(srv, path) == {"mmap"}
    finally:
        srv.stop()


@pytest.mark.rwsgi_specific("mod_wsgi leaves pymalloc's arenas to Python, which unmaps each as it empties")
@pytest.mark.parametrize("path", ["/arenas-emb", "/arenas-daemon"])
def test_python_arenas_freed_by_one_request_serve_the_next_without_page_faults(rwsgi_path, path):
    """~2 MiB of small objects made and freed twice: the second round, in fresh arenas,
    faulted in ~500 pages."""
    srv = start_server(rwsgi_path, CONFIG, name="arena-churn")
    try:
        faults = [int(srv.get(path).body) for _ in range(3)]
        assert min(faults) < 100, faults
    finally:
        srv.stop()


def rss_mib(pid):
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


@pytest.mark.rwsgi_specific("mod_wsgi leaves it to glibc, which keeps what is freed below a block in use")
def test_an_idle_daemon_process_gives_freed_heap_back(rwsgi_path):
    srv = start_server(rwsgi_path, CONFIG, name="heap-trim")
    try:
        pid = int(srv.get("/daemon").header("X-Pid"))
        before = rss_mib(pid)
        r = srv.get("/churn")
        assert r.status == 200 and int(r.body) == pid, r.body
        grown = rss_mib(pid)
        # 117 MiB freed, pinned every 5 MiB by a block still in use
        assert grown - before > 80, (before, grown)
        deadline = time.monotonic() + 10
        while rss_mib(pid) > before + 30 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert rss_mib(pid) <= before + 30, (before, grown, rss_mib(pid))
    finally:
        srv.stop()
