"""WSGINewRelicConfigFile / WSGINewRelicEnvironment and the daemon options
newrelic-config-file / newrelic-environment (mod_wsgi <= 5): the agent is initialised once per
interpreter with the file and environment, and every application runs inside its WSGI
wrapper. A stand-in `newrelic` package (tests/apps/newrelic_fake) records the calls."""
import re

import pytest

EMBEDDED = """
WSGIPythonPath {apps}/newrelic_fake
WSGINewRelicConfigFile {apps}/newrelic.ini
WSGINewRelicEnvironment staging
WSGIScriptAlias /h {apps}/hello.wsgi
"""

DAEMON = """
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess nr processes=1 threads=2 python-path={apps}/newrelic_fake \\
    newrelic-config-file={apps}/newrelic.ini newrelic-environment=production
WSGIProcessGroup nr
WSGIScriptAlias /h {apps}/hello.wsgi
"""

MISSING = """
WSGINewRelicConfigFile {apps}/newrelic.ini
WSGIScriptAlias /h {apps}/hello.wsgi
"""


@pytest.mark.parametrize("config,env", [(EMBEDDED, "staging"), (DAEMON, "production")],
                         ids=["embedded", "daemon"])
def test_agent_initialised_once_and_wraps_every_request(make_server, config, env):
    srv = make_server(config, name="newrelic")
    for _ in range(3):
        r = srv.get("/h")
        assert r.status == 200 and r.body == b"Hello, World!", r
        assert r.header("X-Fake-NewRelic") == f"newrelic.ini|{env}|1", r.headers


def test_agent_that_cannot_be_imported_is_logged_and_the_app_still_runs(make_server):
    srv = make_server(MISSING, name="newrelic-missing")
    r = srv.get("/h")
    assert r.status == 200 and r.body == b"Hello, World!", r
    assert r.header("X-Fake-NewRelic") is None
    # the interpreter may have been set up when the child started: the whole log
    srv.wait_for_log(re.compile(r"newrelic|New Relic"), since=0)
