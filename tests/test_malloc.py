"""glibc malloc arenas in the processes that run Python: two per core (2 to 8) unless the admin
sets MALLOC_ARENA_MAX (glibc's default of up to 8 per core let each of Apache's or a daemon's
many threads keep its own arena's worth of freed memory: embedded RSS kept growing in steps)."""
import concurrent.futures
import os

import pytest

from harness import start_server

CONFIG = """
WSGIScriptAlias /emb {apps}/arenas.wsgi
WSGIDaemonProcess many threads=12
WSGIScriptAlias /daemon {apps}/arenas.wsgi process-group=many application-group=%{GLOBAL}
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
