"""Trust boundaries (the "Security" section of the README): what application code can and
cannot reach, in embedded and daemon mode.

1. Request-bound objects kept past their request (wsgi.errors in a logging handler, a
   background thread, a kept wsgi.input / start_response / write) raise mod_wsgi's
   RuntimeError; they never reach the ended request (embedded: a segfault of the Apache
   child) nor its daemon connection (daemon: a hang of the next request).
"""
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
