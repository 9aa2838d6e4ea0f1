"""The interpreter-level and per-directory directives: WSGIPython*, WSGIImportScript,
WSGIRestrict*, WSGIPassAuthorization, %{...} application groups and .htaccess."""
import subprocess

import pytest

from harness import ApacheServer, start_server

CONFIG = """
WSGIPythonPath {apps}/extra_path
WSGIPythonOptimize 2
WSGIPythonWarnings ignore::DeprecationWarning
WSGIPythonHashSeed 0
WSGIDontWriteBytecode On
WSGILazyInitialization On
WSGIErrorOverride On
WSGIImportScript {apps}/preload.py process-group=%{GLOBAL} application-group=%{GLOBAL}

WSGIScriptAlias /i {apps}/introspect.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /auth {apps}/introspect.wsgi application-group=%{GLOBAL} pass-authorization=On
WSGIScriptAlias /dirauth {apps}/introspect.wsgi application-group=%{GLOBAL}
<Location /dirauth>
    WSGIPassAuthorization On
</Location>
WSGIScriptAlias /server {apps}/introspect.wsgi
<Location /server>
    WSGIApplicationGroup %{SERVER}
</Location>
WSGIScriptAlias /host {apps}/introspect.wsgi
<Location /host>
    WSGIApplicationGroup %{HOST}
</Location>
WSGIScriptAlias /envgroup {apps}/introspect.wsgi
<Location /envgroup>
    SetEnv RWSGI_GROUP from-env
    WSGIApplicationGroup %{ENV:RWSGI_GROUP}
</Location>

Alias /ht {apps}/ht
Alias /htbad {apps}/ht_bad
<Directory {apps}/ht>
    AllowOverride FileInfo
    Options ExecCGI
</Directory>
<Directory {apps}/ht_bad>
    AllowOverride FileInfo
    Options ExecCGI
</Directory>
"""


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, name="directives", load_modules=("env",))
    yield s
    s.stop(wait=False)


def test_python_settings_reach_the_interpreter(srv):
    d = srv.get("/i").json()
    assert d["optimize"] == 2 and d["debug"] is False
    assert d["dont_write_bytecode"] is True
    assert d["warnings"][0] == ["ignore", "DeprecationWarning"]
    assert d["extra_module"] == {"ok": "from WSGIPythonPath"}
    assert d["argv"] == ["mod_wsgi"]
    assert d["prefix"] == "/usr"


@pytest.mark.rwsgi_specific(reason="WSGISwitchInterval is a mod_wsgi 6.x directive")
def test_switch_interval(rwsgi_path):
    s = start_server(rwsgi_path, "WSGISwitchInterval 0.01\nWSGIScriptAlias /i {apps}/introspect.wsgi\n",
                     name="switch")
    try:
        assert s.get("/i").json()["switch_interval"] == pytest.approx(0.01)
    finally:
        s.stop(wait=False)


def test_hash_seed(srv):
    expected = subprocess.run(["/usr/bin/python3.11", "-c", "print(hash('rwsgi'))"],
                              env={"PYTHONHASHSEED": "0"}, capture_output=True, text=True,
                              check=True).stdout.strip()
    assert srv.get("/i").json()["hash"] == int(expected)


def test_import_script_runs_at_child_start(srv):
    d = srv.get("/i").json()
    assert d["preloaded_pid"] == d["pid"]
    srv.wait_for_log("rwsgi preload ran in pid %d" % d["pid"])


@pytest.mark.parametrize("path,passed", [("/i", False), ("/auth", True), ("/dirauth", True)])
def test_pass_authorization(srv, path, passed):
    d = srv.get(path, headers=[("Authorization", "Basic dTpw")]).json()
    assert d["authorization"] == ("Basic dTpw" if passed else None)


def test_group_expansions(srv):
    port = srv.port
    assert srv.get("/server").json()["application_group"] == f"127.0.0.1:{port}"
    # the port is the request's (Host header), and 80/443 are left out, as with mod_wsgi
    assert srv.get("/host", headers=[("Host", "example.test:8080")]).json()["application_group"] == "example.test:8080"
    assert srv.get("/host", headers=[("Host", "example.test")]).json()["application_group"] == "example.test"
    assert srv.get("/envgroup").json()["application_group"] == "from-env"


def test_htaccess_fileinfo_directives(srv):
    # AddHandler + WSGIPassAuthorization + WSGICallableObject from .htaccess (FileInfo)
    r = srv.get("/ht/introspect.wsgi", headers=[("Authorization", "Bearer t")])
    assert r.status == 200, (r.status, srv.error_log()[-2000:])
    d = r.json()
    assert d["authorization"] == "Bearer t"
    # a script reached through a handler gets a sub-interpreter of its own (%{RESOURCE})
    assert d["application_group"] == f"127.0.0.1:{srv.port}|/ht/introspect.wsgi"


def test_htaccess_cannot_choose_the_interpreter(srv):
    # WSGIApplicationGroup is server/vhost/directory-section only, as in mod_wsgi
    mark = srv.log_mark()
    assert srv.get("/htbad/introspect.wsgi").status == 500
    srv.wait_for_log("WSGIApplicationGroup not allowed here", since=mark)


def test_signal_registration_is_ignored_by_default(srv):
    mark = srv.log_mark()
    d = srv.get("/i?signal").json()
    # like mod_wsgi: the handler is handed back and never installed
    assert d["signal"]["ok"].startswith("<function")
    srv.wait_for_log("Callback registration for signal", since=mark)


def test_print_goes_to_the_error_log(srv):
    mark = srv.log_mark()
    assert srv.get("/i?print").json()["print"] == {"ok": None}
    srv.wait_for_log("introspect print marker", since=mark)


def test_restrict_stdout_and_signal_off(rwsgi_path):
    s = start_server(rwsgi_path, "WSGIRestrictStdout On\nWSGIRestrictSignal Off\n"
                     "WSGIScriptAlias /i {apps}/introspect.wsgi\n", name="restrict")
    try:
        d = s.get("/i?print&signal").json()
        assert "restricted" in d["print"]["error"]
        # the real signal.signal: only the main thread may install handlers
        assert d["signal"]["error"].startswith("ValueError")
    finally:
        s.stop(wait=False)


def test_restrict_embedded(rwsgi_path):
    s = start_server(rwsgi_path, "WSGIRestrictEmbedded On\nWSGIScriptAlias /i {apps}/introspect.wsgi\n",
                     name="restrict-embedded")
    try:
        mark = s.log_mark()
        assert s.get("/i").status == 500
        s.wait_for_log("Embedded mode of mod_wsgi disabled", since=mark)
    finally:
        s.stop(wait=False)


@pytest.mark.rwsgi_specific(reason="mod_wsgi 4.9 accepts WSGILazyInitialization Off and "
                                   "initialises Python in the root parent")
def test_lazy_initialization_off_is_refused(rwsgi_path):
    s = ApacheServer(rwsgi_path, config="WSGILazyInitialization Off\n", name="lazy")
    try:
        ok, out = s.configtest()
        assert not ok and "WSGILazyInitialization Off is not supported" in out, out
    finally:
        s.stop()
