"""WSGIDispatchScript, WSGIHandlerScript and WSGIPassApacheRequest, as mod_wsgi 4.9.4 does
them (facts and source references: /tmp/modwsgi-facts/auth_dispatch.md).

- WSGIDispatchScript (server, vhost, <Directory>/<Location>/<Files>; option
  application-group= only) runs in the Apache child (main interpreter by default) for every
  request mod_wsgi handles, after WSGIProcessGroup / WSGIApplicationGroup /
  WSGICallableObject and the WSGIScriptAlias options are applied, so what it returns wins.
  process_group(environ), application_group(environ), callable_object(environ) are each
  optional, called in that order; None keeps the configured value, a str (or latin-1
  bytes) replaces it (%{GLOBAL}, %{SERVER}... are expanded), an exception or another type
  is a 500 (and the later hooks are not called). A dispatch script that is missing or
  fails to import is logged and ignored: the request is served as configured.
- WSGIHandlerScript NAME PATH [process-group= application-group= pass-authorization=]
  makes NAME an Apache handler (AddHandler / SetHandler) served by PATH's
  handle_request(environ, start_response), with SCRIPT_FILENAME the requested file (which
  need not exist), in the application group %{RESOURCE} of that file by default; the
  script may define reload_required(resource).
- WSGIPassApacheRequest On puts a PyCapsule of the request_rec in
  environ['apache.request_rec'], in embedded mode only (also in the dispatch/auth hooks,
  which run in the Apache child).
"""
import json
import os
import shutil
import time

import pytest

from conftest import MODES, embedded_only, in_mode
from harness import ApacheServer, start_server

DISPATCH_CONFIG = """
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess alpha processes=1 threads=2
WSGIDaemonProcess beta processes=1 threads=2
WSGIDispatchScript {apps}/dispatch_script.wsgi
WSGIScriptAlias /d {apps}/dispatch_app.wsgi
WSGIScriptAlias /dopt {apps}/dispatch_app.wsgi process-group=alpha application-group=optgroup callable-object=other
WSGIScriptAlias /dwp {apps}/dispatch_app.wsgi
WSGIScriptAlias /dloc {apps}/dispatch_app.wsgi
WSGIScriptAlias /ddir {var}/ddir/app.wsgi
WSGIScriptAlias /dnh {apps}/dispatch_app.wsgi
WSGIScriptAlias /dbroken {apps}/dispatch_app.wsgi
WSGIScriptAlias /dmissing {apps}/dispatch_app.wsgi
WSGIScriptAlias /dreload {apps}/dispatch_app.wsgi
<Location /dwp>
    WSGIProcessGroup beta
    WSGIApplicationGroup %{GLOBAL}
    WSGIPassApacheRequest On
</Location>
<Location /dloc>
    WSGIDispatchScript {apps}/dispatch_script.wsgi application-group=dispatchers
</Location>
<Directory {var}/ddir>
    WSGIDispatchScript {apps}/dispatch_script.wsgi application-group=dirdispatch
</Directory>
<Location /dnh>
    WSGIDispatchScript {apps}/dispatch_nohooks.wsgi
</Location>
<Location /dbroken>
    WSGIDispatchScript {apps}/auth_broken.wsgi
</Location>
<Location /dmissing>
    WSGIDispatchScript {apps}/dispatch_does_not_exist.wsgi
</Location>
<Location /dreload>
    WSGIDispatchScript {var}/dispatch_reload.wsgi
</Location>

WSGIHandlerScript xyz-daemon {apps}/handler_script.wsgi process-group=alpha application-group=hgroup pass-authorization=On
WSGIHandlerScript xyz-nosuchgroup {apps}/handler_script.wsgi process-group=nosuch
Alias /dfiles {apps}
Alias /ngfiles {apps}
<Location /dfiles>
    AddHandler xyz-daemon .xyz
</Location>
<Location /ngfiles>
    AddHandler xyz-nosuchgroup .xyz
</Location>
"""

DISPATCH_RELOAD_V1 = "def process_group(environ):\n    return 'alpha'\n"
DISPATCH_RELOAD_V2 = "def process_group(environ):\n    return 'beta'\n"


@pytest.fixture(scope="module")
def dsrv(rwsgi_path):
    s = ApacheServer(rwsgi_path, config=DISPATCH_CONFIG, name="dispatch")
    ddir = s.var / "ddir"
    ddir.mkdir()
    shutil.copy(s.apps / "dispatch_app.wsgi", ddir / "app.wsgi")
    (s.var / "dispatch_reload.wsgi").write_text(DISPATCH_RELOAD_V1)
    os.chmod(ddir, 0o755)
    for f in (ddir / "app.wsgi", s.var / "dispatch_reload.wsgi"):
        os.chmod(f, 0o644)
    try:
        s.start()
    except BaseException:
        s.stop()
        raise
    yield s
    s.stop(wait=False)


@pytest.fixture(scope="module")
def daemon_pids(dsrv):
    """pid of the alpha and beta daemon processes (each processes=1)."""
    return {g: jget(dsrv, f"/d/?pg={g}")["pid"] for g in ("alpha", "beta")}


def jget(srv, path, status=200, **kw):
    r = srv.get(path, **kw)
    assert r.status == status, r
    return r.json() if status == 200 else r


def read_dump(srv, name):
    return json.loads((srv.var / f"{name}.json").read_text())


def assert_logged(srv, mark, *needles, timeout=5):
    for n in needles:
        srv.wait_for_log(n, since=mark, timeout=timeout)
    return srv.error_log_since(mark)


# --------------------------------------------------------------------------
# WSGIDispatchScript: process_group()


def test_dispatch_returning_none_keeps_configuration(dsrv):
    d = jget(dsrv, "/d/")
    assert d["callable"] == "application"
    assert d["process_group"] == ""
    assert d["application_group"] == f"127.0.0.1:{dsrv.port}|/d"
    assert d["callable_object"] == "application"


def test_dispatch_selects_process_group(dsrv, daemon_pids):
    a = jget(dsrv, "/d/?pg=alpha")
    b = jget(dsrv, "/d/?pg=beta")
    assert (a["process_group"], a["module"]["process_group"]) == ("alpha", "alpha")
    assert (b["process_group"], b["module"]["process_group"]) == ("beta", "beta")
    assert a["pid"] == daemon_pids["alpha"] != b["pid"] == daemon_pids["beta"]
    # the default application group is still the resource's
    assert a["application_group"] == b["application_group"] == f"127.0.0.1:{dsrv.port}|/d"


def test_dispatch_process_group_as_bytes(dsrv, daemon_pids):
    d = jget(dsrv, "/d/?pg=bytes")  # b"beta"
    assert d["process_group"] == "beta" and d["pid"] == daemon_pids["beta"]


def test_dispatch_global_process_group_means_embedded(dsrv, daemon_pids):
    # /dwp is configured for beta (WSGIProcessGroup); %{GLOBAL} brings it back embedded
    d = jget(dsrv, "/dwp/?pg=%25%7BGLOBAL%7D")
    assert d["process_group"] == "" and d["module"]["process_group"] == ""
    assert d["pid"] not in daemon_pids.values()


def test_dispatch_beats_process_group_directive(dsrv, daemon_pids):
    assert jget(dsrv, "/dwp/")["process_group"] == "beta"
    d = jget(dsrv, "/dwp/?pg=alpha")
    assert d["process_group"] == "alpha" and d["pid"] == daemon_pids["alpha"]


def test_dispatch_beats_script_alias_options(dsrv, daemon_pids):
    d = jget(dsrv, "/dopt/")
    assert (d["process_group"], d["application_group"], d["callable"]) == \
        ("alpha", "optgroup", "other")
    d = jget(dsrv, "/dopt/?pg=beta&ag=a2&co=application")
    assert (d["process_group"], d["application_group"], d["callable"]) == \
        ("beta", "a2", "application")
    assert d["pid"] == daemon_pids["beta"]
    # all three None: the WSGIScriptAlias options stand
    d = jget(dsrv, "/dopt/?pg=none&ag=none&co=none")
    assert (d["process_group"], d["application_group"], d["callable"]) == \
        ("alpha", "optgroup", "other")


def test_dispatch_unknown_process_group_is_500(dsrv):
    mark = dsrv.log_mark()
    jget(dsrv, "/d/?pg=nosuch", status=500)
    assert_logged(dsrv, mark, "No WSGI daemon process called 'nosuch' has been configured")


# --------------------------------------------------------------------------
# application_group() and callable_object()


@pytest.mark.parametrize("query,expected", [
    ("ag=custom", "custom"),
    ("ag=bytes", "bytes-group"),
    ("ag=%25%7BGLOBAL%7D", ""),
    ("ag=%25%7BSERVER%7D", "127.0.0.1:{port}"),
    ("ag=%25%7BRESOURCE%7D", "127.0.0.1:{port}|/d"),
])
def test_dispatch_selects_application_group(dsrv, query, expected):
    d = jget(dsrv, "/d/?" + query)
    assert d["application_group"] == expected.replace("{port}", str(dsrv.port))
    assert d["process_group"] == ""


def test_dispatch_application_group_in_daemon(dsrv, daemon_pids):
    d = jget(dsrv, "/d/?pg=alpha&ag=custom")
    assert (d["process_group"], d["application_group"]) == ("alpha", "custom")
    assert d["pid"] == daemon_pids["alpha"]


@pytest.mark.parametrize("query", ["co=other", "co=bytes"])
def test_dispatch_selects_callable(dsrv, query):
    d = jget(dsrv, "/d/?" + query)
    assert d["callable"] == "other" and d["callable_object"] == "other"


def test_dispatch_callable_env_expansion(dsrv):
    # %{ENV:NAME} with NAME unset falls back to "application"
    d = jget(dsrv, "/d/?co=%25%7BENV:RWSGI_NO_SUCH_VARIABLE%7D")
    assert d["callable"] == "application"


def test_dispatch_callable_in_daemon(dsrv, daemon_pids):
    d = jget(dsrv, "/d/?pg=beta&co=other")
    assert d["callable"] == "other" and d["pid"] == daemon_pids["beta"]


def test_dispatch_missing_callable_is_500_in_daemon(dsrv):
    mark = dsrv.log_mark()
    jget(dsrv, "/d/?pg=alpha&co=nosuch", status=500)
    assert_logged(dsrv, mark, f"Target WSGI script '{dsrv.apps}/dispatch_app.wsgi' does not "
                              "contain WSGI application 'nosuch'.")


@pytest.mark.rwsgi_specific(reason="mod_wsgi answers 404 for a missing callable in embedded mode "
                                   "(rwsgi: 500, as test_errors.py's missing-callable tests)")
def test_dispatch_missing_callable_is_500_embedded(dsrv):
    mark = dsrv.log_mark()
    jget(dsrv, "/d/?co=nosuch", status=500)
    assert_logged(dsrv, mark, "does not contain WSGI application 'nosuch'.")


# --------------------------------------------------------------------------
# where the dispatch script runs, and its environ


def test_dispatch_runs_in_the_apache_child_main_interpreter(dsrv, daemon_pids):
    # application_group() answers "dispatch-ran-in=" + its own environ's application group
    d = jget(dsrv, "/d/?ag=whoami")
    assert d["application_group"] == "dispatch-ran-in="
    # even when the request then goes to a daemon
    d = jget(dsrv, "/dwp/?ag=whoami")
    assert d["application_group"] == "dispatch-ran-in=" and d["process_group"] == "beta"
    jget(dsrv, "/dwp/x?pg=alpha&dump=where")
    for hook in ("process_group", "application_group", "callable_object"):
        facts = read_dump(dsrv, f"dispatch_where_{hook}")["facts"]
        assert facts["mod_wsgi"]["process_group"] == ""
        assert facts["pid"] not in daemon_pids.values()
        assert facts["pid"] in dsrv.child_pids()


def test_dispatch_application_group_option_location(dsrv):
    d = jget(dsrv, "/dloc/?ag=whoami")
    assert d["application_group"] == "dispatch-ran-in=dispatchers"


def test_dispatch_in_directory_context(dsrv):
    # <Directory {var}/ddir> WSGIDispatchScript ... application-group=dirdispatch
    d = jget(dsrv, "/ddir/?ag=whoami")
    assert d["application_group"] == "dispatch-ran-in=dirdispatch"
    assert jget(dsrv, "/d/?ag=whoami")["application_group"] == "dispatch-ran-in="


def test_dispatch_environ(dsrv):
    jget(dsrv, "/dwp/x?pg=alpha&dump=env")
    dumps = {h: read_dump(dsrv, f"dispatch_env_{h}")
             for h in ("process_group", "application_group", "callable_object")}
    # the three hooks are called in this order
    assert dumps["callable_object"]["extra"]["calls"][-3:] == \
        ["process_group", "application_group", "callable_object"]
    env, types = dumps["process_group"]["environ"], dumps["process_group"]["types"]
    # the request's CGI variables ...
    assert env["REQUEST_METHOD"] == "GET"
    assert env["REQUEST_URI"] == "/dwp/x?pg=alpha&dump=env"
    assert env["QUERY_STRING"] == "pg=alpha&dump=env"
    assert env["SCRIPT_NAME"] == "/dwp" and env["PATH_INFO"] == "/x"
    assert env["SCRIPT_FILENAME"] == f"{dsrv.apps}/dispatch_app.wsgi"
    assert env["HTTP_HOST"] == f"127.0.0.1:{dsrv.port}"
    assert env["mod_wsgi.request_handler"] == "wsgi-script"
    # ... with the context the script runs in, not the configured target (/dwp: beta)
    assert env["mod_wsgi.process_group"] == ""
    assert env["mod_wsgi.application_group"] == ""
    assert "mod_wsgi.callable_object" not in env
    # no request body or WSGI application keys
    for k in ("wsgi.input", "wsgi.version", "wsgi.url_scheme", "wsgi.file_wrapper"):
        assert k not in env, k
    assert dumps["process_group"]["errors_can_write"] is True
    # WSGIPassApacheRequest On (/dwp): the dispatch script runs in the Apache child
    assert types["apache.request_rec"] == "PyCapsule"
    for k, v in env.items():
        if k.isupper() and "." not in k:
            assert types[k] == "str", (k, types[k])
    jget(dsrv, "/d/y?dump=plain")
    plain = read_dump(dsrv, "dispatch_plain_process_group")["environ"]
    assert "apache.request_rec" not in plain
    assert plain["mod_wsgi.application_group"] == ""


# --------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("query,hook", [
    ("pg=boom", "process_group"),
    ("ag=boom", "application_group"),
    ("co=boom", "callable_object"),
])
def test_dispatch_exception_is_500(dsrv, query, hook):
    mark = dsrv.log_mark()
    jget(dsrv, "/d/?" + query, status=500)
    log = assert_logged(dsrv, mark,
                        f"Exception occurred processing WSGI script "
                        f"'{dsrv.apps}/dispatch_script.wsgi'",
                        f"RuntimeError: dispatch-boom-{hook}")
    assert f"in {hook}" in log
    assert jget(dsrv, "/d/")["callable"] == "application"


def test_dispatch_exception_stops_later_hooks(dsrv):
    for hook in ("process_group", "application_group", "callable_object"):
        try:
            (dsrv.var / f"dispatch_stop_{hook}.json").unlink()
        except FileNotFoundError:
            pass
    jget(dsrv, "/d/?pg=boom&dump=stop", status=500)
    assert (dsrv.var / "dispatch_stop_process_group.json").exists()
    assert not (dsrv.var / "dispatch_stop_application_group.json").exists()
    assert not (dsrv.var / "dispatch_stop_callable_object.json").exists()


@pytest.mark.parametrize("query,message", [
    ("pg=badtype", "Process group must be a byte string"),
    ("ag=badtype", "Application group must be a string object"),
    ("co=badtype", "Callable object must be a string object"),
])
def test_dispatch_bad_type_is_500(dsrv, query, message):
    mark = dsrv.log_mark()
    jget(dsrv, "/d/?" + query, status=500)
    assert_logged(dsrv, mark, message)


def test_dispatch_script_without_hooks(dsrv):
    d = jget(dsrv, "/dnh/")
    assert (d["process_group"], d["application_group"], d["callable"]) == \
        ("", f"127.0.0.1:{dsrv.port}|/dnh", "application")


def test_dispatch_script_import_error_is_ignored(dsrv):
    # the failure is logged and the request served as configured (not a 500)
    mark = dsrv.log_mark()
    d = jget(dsrv, "/dbroken/")
    assert d["callable"] == "application"
    assert_logged(dsrv, mark, f"'{dsrv.apps}/auth_broken.wsgi'", "ImportError: auth-broken-import")


def test_dispatch_script_missing_is_ignored(dsrv):
    mark = dsrv.log_mark()
    d = jget(dsrv, "/dmissing/")
    assert d["callable"] == "application"
    assert_logged(dsrv, mark, f"'{dsrv.apps}/dispatch_does_not_exist.wsgi'",
                  "No such file or directory")


def test_dispatch_script_reloaded_when_touched(dsrv, daemon_pids):
    path = dsrv.var / "dispatch_reload.wsgi"
    path.write_text(DISPATCH_RELOAD_V1)
    os.utime(path, (time.time() - 20, time.time() - 20))
    with dsrv.keepalive() as conn:  # one Apache child
        assert conn.get("/dreload/").json()["process_group"] == "alpha"
        path.write_text(DISPATCH_RELOAD_V2)
        os.utime(path, (time.time(), time.time()))
        d = conn.get("/dreload/").json()
        assert d["process_group"] == "beta" and d["pid"] == daemon_pids["beta"]
    for _ in range(4):
        assert jget(dsrv, "/dreload/")["process_group"] == "beta"


RESTRICTED = """
WSGIRestrictEmbedded On
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess alpha processes=1 threads=2
WSGIDispatchScript {apps}/dispatch_script.wsgi
WSGIScriptAlias /d {apps}/dispatch_app.wsgi
"""


def test_dispatch_with_restrict_embedded(make_server):
    # the dispatch script itself runs in the Apache child; an application left embedded
    # is refused
    srv = make_server(RESTRICTED, name="dispatch-restricted")
    assert jget(srv, "/d/?pg=alpha")["process_group"] == "alpha"
    mark = srv.log_mark()
    jget(srv, "/d/", status=500)
    assert_logged(srv, mark, "Embedded mode of mod_wsgi disabled by runtime configuration")


@pytest.mark.parametrize("config", [
    "WSGIDispatchScript {apps}/dispatch_script.wsgi",
    "WSGIDispatchScript {apps}/dispatch_script.wsgi application-group=x",
    "<VirtualHost 127.0.0.1:{port}>\n"
    "WSGIDispatchScript {apps}/dispatch_script.wsgi\n</VirtualHost>",
    "<Directory {apps}>\nWSGIDispatchScript {apps}/dispatch_script.wsgi\n</Directory>",
    "<Location /x>\nWSGIDispatchScript {apps}/dispatch_script.wsgi\n</Location>",
    "<Files x.wsgi>\nWSGIDispatchScript {apps}/dispatch_script.wsgi\n</Files>",
    "WSGIPassApacheRequest On",
    "<Directory {apps}>\nWSGIPassApacheRequest Off\n</Directory>",
    "WSGIHandlerScript h {apps}/handler_script.wsgi application-group=%{GLOBAL} "
    "pass-authorization=Off",
    "<Location /x>\nWSGIHandlerScript h {apps}/handler_script.wsgi\n</Location>",
    # the process group is only looked up when a request needs it
    "WSGIHandlerScript h {apps}/handler_script.wsgi process-group=nosuch",
])
def test_directive_contexts_accepted(rwsgi_path, config):
    s = ApacheServer(rwsgi_path, config=config + "\n", name="dispatch-syntax")
    try:
        ok, out = s.configtest()
    finally:
        s.stop()
    assert ok, out


@pytest.mark.parametrize("config,message", [
    ("WSGIDispatchScript", "Location of dispatch script not supplied."),
    ("WSGIDispatchScript {apps}/dispatch_script.wsgi process-group=x",
     "Invalid option to WSGI dispatch script definition."),
    ("WSGIDispatchScript {apps}/dispatch_script.wsgi application-group=",
     "Invalid name for WSGI application group."),
    ("WSGIPassApacheRequest maybe", "WSGIPassApacheRequest must be one of: Off | On"),
    ("WSGIHandlerScript", "Name for handler script not supplied."),
    ("WSGIHandlerScript h", "Location of handler script not supplied."),
    ("WSGIHandlerScript h {apps}/handler_script.wsgi bar=1",
     "Invalid option to WSGI handler script definition."),
    ("WSGIHandlerScript h {apps}/handler_script.wsgi pass-authorization=maybe",
     "Invalid value for authorization flag."),
    ("WSGIHandlerScript h {apps}/handler_script.wsgi process-group=",
     "Invalid name for WSGI process group."),
])
def test_directive_syntax_errors(rwsgi_path, config, message):
    s = ApacheServer(rwsgi_path, config=config + "\n", name="dispatch-syntax")
    try:
        ok, out = s.configtest()
    finally:
        s.stop()
    assert not ok
    assert message in out, out


# --------------------------------------------------------------------------
# WSGIHandlerScript with process-group= / application-group= / pass-authorization=


def test_handler_script_options(dsrv, daemon_pids):
    d = jget(dsrv, "/dfiles/handler_page.xyz", headers={"Authorization": "Bearer tok"})
    assert d["callable"] == "handle_request"
    assert d["mod_wsgi.process_group"] == "alpha" and d["pid"] == daemon_pids["alpha"]
    assert d["module_process_group"] == "alpha"
    assert d["mod_wsgi.application_group"] == "hgroup"
    assert d["authorization"] == "Bearer tok"  # pass-authorization=On
    assert d["content"] == "xyz page one\n"


def test_handler_script_unknown_process_group_is_500(dsrv):
    mark = dsrv.log_mark()
    jget(dsrv, "/ngfiles/handler_page.xyz", status=500)
    assert_logged(dsrv, mark, "No WSGI daemon process called 'nosuch' has been configured")


# --------------------------------------------------------------------------
# WSGIHandlerScript, embedded and in a daemon group

HANDLER_CONFIG = """
WSGIHandlerScript xyz-handler {apps}/handler_script.wsgi
WSGIHandlerScript xyz-grouped {apps}/handler_script.wsgi application-group=handlers
WSGIHandlerScript xyz-nocallable {apps}/handler_nocallable.wsgi
WSGIHandlerScript xyz-missing {apps}/handler_does_not_exist.wsgi
Alias /files {apps}
Alias /grouped {apps}
Alias /nc {apps}
Alias /ms {apps}
Alias /pass {apps}
<Location /files>
    AddHandler xyz-handler .xyz
</Location>
<Location /grouped>
    AddHandler xyz-grouped .xyz
</Location>
<Location /nc>
    AddHandler xyz-nocallable .xyz
</Location>
<Location /ms>
    AddHandler xyz-missing .xyz
</Location>
<Location /pass>
    AddHandler xyz-handler .xyz
    WSGIPassApacheRequest On
</Location>
<Location /sethandler>
    SetHandler xyz-handler
</Location>
WSGIScriptAlias /app {apps}/dispatch_app.wsgi
WSGIScriptAlias /apppass {apps}/dispatch_app.wsgi
<Location /apppass>
    WSGIPassApacheRequest On
</Location>
"""


@pytest.fixture(scope="module", params=MODES)
def srv(request, rwsgi_path):
    s = start_server(rwsgi_path, in_mode(HANDLER_CONFIG, request.param),
                     name=f"handler-{request.param}")
    s.mode = request.param
    yield s
    s.stop(wait=False)


def _group(srv):
    return "suite" if srv.mode == "daemon" else ""


def test_handler_serves_file(srv):
    d = jget(srv, "/files/handler_page.xyz/extra?q=1")
    assert d["callable"] == "handle_request"
    assert d["mod_wsgi.callable_object"] == "handle_request"
    assert d["content"] == "xyz page one\n"
    assert d["SCRIPT_FILENAME"] == f"{srv.apps}/handler_page.xyz"
    assert d["SCRIPT_NAME"] == "/files/handler_page.xyz"
    assert d["PATH_INFO"] == "/extra"
    assert d["QUERY_STRING"] == "q=1"
    assert d["REQUEST_URI"] == "/files/handler_page.xyz/extra?q=1"
    assert d["mod_wsgi.handler_script"] == f"{srv.apps}/handler_script.wsgi"
    assert d["mod_wsgi.request_handler"] == "xyz-handler"
    assert d["mod_wsgi.process_group"] == d["module_process_group"] == _group(srv)
    assert d["wsgi.version"] == [1, 0]
    assert d["authorization"] is None  # not passed by default
    assert d["request_rec"] is None


def test_handler_default_application_group_is_the_file(srv):
    # %{RESOURCE} of the request: one interpreter per handled file
    d = jget(srv, "/files/handler_page.xyz")
    assert d["mod_wsgi.application_group"] == f"127.0.0.1:{srv.port}|/files/handler_page.xyz"
    d = jget(srv, "/files/handler_page-reload.xyz")
    assert d["mod_wsgi.application_group"] == \
        f"127.0.0.1:{srv.port}|/files/handler_page-reload.xyz"


def test_handler_application_group_option(srv):
    d = jget(srv, "/grouped/handler_page.xyz")
    assert d["mod_wsgi.application_group"] == "handlers"


def test_handler_file_need_not_exist(srv):
    d = jget(srv, "/files/nope.xyz")
    assert d["SCRIPT_FILENAME"] == f"{srv.apps}/nope.xyz"
    assert d["open_error"] == "FileNotFoundError"


def test_sethandler(srv):
    d = jget(srv, "/sethandler/foo/bar")
    assert d["callable"] == "handle_request"
    assert d["SCRIPT_FILENAME"] == f"{srv.root}/htdocs/sethandler"
    assert d["SCRIPT_NAME"] == "/sethandler" and d["PATH_INFO"] == "/foo/bar"
    assert d["mod_wsgi.request_handler"] == "xyz-handler"


def test_handler_only_for_its_extension(srv):
    # other files under the same Alias are Apache's (here: the default handler)
    r = srv.get("/files/hello.wsgi")
    assert r.status == 200
    assert r.body == (srv.apps / "hello.wsgi").read_bytes()


@pytest.mark.rwsgi_specific(reason="mod_wsgi answers 404 for a missing callable in embedded mode "
                                   "(rwsgi: 500, as test_errors.py's missing-callable tests)",
                            modes=("embedded",))
def test_handler_without_handle_request_is_500(srv):
    mark = srv.log_mark()
    jget(srv, "/nc/handler_page.xyz", status=500)
    assert_logged(srv, mark, f"Target WSGI script '{srv.apps}/handler_nocallable.wsgi' does not "
                             "contain WSGI application 'handle_request'.")


def test_handler_script_missing_is_500(srv):
    mark = srv.log_mark()
    jget(srv, "/ms/handler_page.xyz", status=500)
    assert_logged(srv, mark, f"'{srv.apps}/handler_does_not_exist.wsgi'",
                  "No such file or directory")


def test_handler_reload_required(srv, request):
    # reload_required(resource) is asked before each request once the script is loaded;
    # True reloads the script module (in a daemon group mod_wsgi restarts the process)
    embedded_only(request, "reload_required reloads the module in place only when embedded")
    with srv.keepalive() as conn:  # one Apache child, one interpreter ("handlers")
        first = conn.get("/grouped/handler_page.xyz").json()
        second = conn.get("/grouped/handler_page.xyz").json()
        assert second["calls"] == first["calls"] + 1 and second["pid"] == first["pid"]
        reloaded = conn.get("/grouped/handler_page-reload.xyz").json()
        assert reloaded["calls"] == 1 and reloaded["pid"] == first["pid"]
        assert conn.get("/grouped/handler_page.xyz").json()["calls"] == 2


# --------------------------------------------------------------------------
# WSGIPassApacheRequest


def test_pass_apache_request_handler(srv):
    d = jget(srv, "/pass/handler_page.xyz")
    assert d["request_rec"] == ("PyCapsule" if srv.mode == "embedded" else None)


def test_pass_apache_request_application(srv):
    assert jget(srv, "/app/")["request_rec"] is None
    d = jget(srv, "/apppass/")
    assert d["process_group"] == _group(srv)
    # a pointer into the Apache child's memory: never sent to a daemon process
    assert d["request_rec"] == ("PyCapsule" if srv.mode == "embedded" else None)
