"""WSGISlowRequests (mod_wsgi 6, server-wide; 0 = off): a request that takes longer is logged
with its method, path (the query string left out, as mod_wsgi's records do), its time and
where the time went — in embedded and in daemon processes; a faster one is not."""
import re
import time

import pytest

from harness import start_server

CONFIG = """
WSGISlowRequests 0.4
WSGIDaemonProcess slowlog threads=2
WSGIScriptAlias /embedded {apps}/daemon_probe.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /daemon {apps}/daemon_probe.wsgi process-group=slowlog application-group=%{GLOBAL}
"""

pytestmark = pytest.mark.rwsgi_specific("mod_wsgi 6 sends these records to its telemetry "
                                        "service instead of the error log")


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, name="slowreq")
    yield s
    s.stop()


@pytest.mark.parametrize("mount", ["/embedded", "/daemon"])
def test_a_slow_request_is_logged_with_its_path(srv, mount):
    mark = srv.log_mark()
    assert srv.get(mount + "/x?t=sleep&s=0.6&token=secret").status == 200
    srv.wait_for_log(re.compile(r"slow request: GET %s/x took 0\.[6-9]\d*s \(over 0\.4s\): "
                                r"[\d.]+s reading the request body, [\d.]+s writing the response"
                                % re.escape(mount)), since=mark)
    assert "secret" not in srv.error_log_since(mark)


@pytest.mark.parametrize("mount", ["/embedded", "/daemon"])
def test_a_fast_request_is_not(srv, mount):
    mark = srv.log_mark()
    assert srv.get(mount + "?t=sleep&s=0.05").status == 200
    time.sleep(0.5)
    assert "slow request" not in srv.error_log_since(mark)


@pytest.mark.parametrize("value", ["-1", "soon", "2s"])
def test_bad_values_stop_configtest(make_server, value):
    s = make_server("WSGISlowRequests %s\n" % value, start=False)
    ok, out = s.configtest()
    assert not ok and "WSGISlowRequests must be a number of seconds (0 = off)" in out, out
