"""wsgi.errors from one request to the next on the same thread (a daemon group with one
thread: every request runs on it). rwsgi gives a thread's next request the same stream when
nothing kept it (making a TextIOWrapper per request was ~13 % of the instructions of a hello
request); whatever a request did to its stream must still stay with that request."""
import json

import pytest

from harness import start_server

CONFIG = """
WSGIDaemonProcess one processes=1 threads=1
WSGIScriptAlias /e {apps}/errors_reuse.wsgi process-group=one application-group=%{GLOBAL}
"""


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, name="errors-stream")
    yield s
    s.stop(wait=False)


def get(srv, query):
    r = srv.get("/e?" + query)
    assert r.status == 200, r
    return json.loads(r.body)


def attrs(srv):
    return get(srv, "t=attrs")


DEFAULTS = {"marker": None, "line_buffering": True, "write_through": True,
            "encoding": "utf-8", "errors": "replace", "name": "<wsgi.errors>"}


@pytest.mark.rwsgi_specific(reason="mod_wsgi makes a new stream for every request")
def test_a_thread_reuses_a_wsgi_errors_nothing_kept(srv):
    get(srv, "t=same")
    assert get(srv, "t=same") == {"same": True}


def test_an_attribute_set_on_wsgi_errors_stays_with_its_request(srv):
    get(srv, "t=mark&m=A1")
    assert attrs(srv) == DEFAULTS


def test_a_reconfigured_wsgi_errors_stays_with_its_request(srv):
    get(srv, "t=reconfigure")
    assert attrs(srv) == DEFAULTS


def test_a_renamed_log_stays_with_its_request(srv):
    get(srv, "t=rename")
    assert attrs(srv) == DEFAULTS


def test_a_kept_wsgi_errors_expires_and_the_next_request_has_its_own(srv):
    mark = srv.log_mark()
    get(srv, "t=keep")
    out = get(srv, "t=use-kept&m=K7")
    assert out == {"kept": "log object has expired", "same": False}, out
    srv.wait_for_log("own-K7", since=mark)
    assert "late-K7" not in srv.error_log_since(mark)


def test_a_partial_line_is_logged_with_its_own_request(srv):
    mark = srv.log_mark()
    get(srv, "t=partial&m=P3")
    get(srv, "t=line&m=L3")
    srv.wait_for_log("line-L3", since=mark)
    lines = srv.error_log_since(mark).splitlines()
    assert [ln for ln in lines if ln.endswith("partial-P3")], lines
    assert [ln for ln in lines if ln.endswith("] line-L3") or ln.endswith(" line-L3")], lines
    assert not [ln for ln in lines if "partial-P3line-L3" in ln], lines
