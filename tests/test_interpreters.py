"""Application groups / Python interpreters, and PyO3-based packages
(cryptography >= 41, pydantic-core) which only work in the interpreter that
imported them first (in practice: the main interpreter)."""
import pytest

from harness import start_server

CONFIG = """
WSGIScriptAlias /sub1 {apps}/appgroup.wsgi
WSGIScriptAlias /sub2 {apps}/appgroup.wsgi
WSGIScriptAlias /shared1 {apps}/appgroup.wsgi
WSGIScriptAlias /shared2 {apps}/appgroup.wsgi
<LocationMatch "^/shared[12]">
    WSGIApplicationGroup shared
</LocationMatch>
WSGIScriptAlias /opt {apps}/appgroup.wsgi application-group=optgroup
WSGIScriptAlias /glob {apps}/appgroup.wsgi
<Location /glob>
    WSGIApplicationGroup %{GLOBAL}
</Location>
"""


@pytest.fixture(scope="module", params=["event", "prefork"])
def srv(request, rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, mpm=request.param, name=f"interp-{request.param}")
    yield s
    s.stop(wait=False)


def test_default_group_is_resource(srv):
    d = srv.get("/sub1").json()
    assert d["application_group"] == f"127.0.0.1:{srv.port}|/sub1"
    assert d["process_group"] == ""
    assert d["main_interpreter"] is False


def test_default_groups_are_isolated(srv):
    with srv.keepalive() as conn:  # one connection -> one process
        a1 = conn.get("/sub1").json()
        b = conn.get("/sub2").json()
        a2 = conn.get("/sub1").json()
    assert a1["pid"] == b["pid"] == a2["pid"]
    assert a1["interp_id"] == a2["interp_id"] != b["interp_id"]
    assert a2["seen"] == ["/sub1"]
    assert b["seen"] == ["/sub2"]
    assert a2["module_loads"] == 1  # script imported once per interpreter


def test_named_group_is_shared(srv):
    with srv.keepalive() as conn:
        a = conn.get("/shared1").json()
        b = conn.get("/shared2").json()
    assert a["application_group"] == b["application_group"] == "shared"
    assert a["interp_id"] == b["interp_id"]
    assert b["seen"] == ["/shared1", "/shared2"]


def test_application_group_option(srv):
    d = srv.get("/opt").json()
    assert d["application_group"] == "optgroup"
    assert d["main_interpreter"] is False


def test_script_module_registered(srv):
    d = srv.get("/sub1").json()
    assert d["in_sys_modules"] is True
    assert d["file"] == str(srv.apps / "appgroup.wsgi")


def test_global_group(srv):
    for _ in range(5):
        d = srv.get("/glob").json()
        assert d["application_group"] == ""
        if srv.mpm == "prefork":
            # threaded MPMs: see test_global_group_always_main_interpreter
            assert d["main_interpreter"] is True


@pytest.mark.rwsgi_specific(
    reason="mod_wsgi 4.9.4 on Python 3.11 with a threaded MPM sometimes runs %{GLOBAL} requests "
           "in a sub-interpreter that the same thread used before (observed: ~20% of requests)",
    strict=False)
def test_global_group_always_main_interpreter(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, mpm="event", name="interp-global")
    try:
        wrong = []
        for _ in range(30):
            for path in ("/sub1", "/glob", "/sub2", "/glob"):
                d = s.get(path).json()
                if path == "/glob" and d["main_interpreter"] is not True:
                    wrong.append(d["interp_id"])
        assert wrong == [], f"{len(wrong)} %{{GLOBAL}} requests ran in sub-interpreters {set(wrong)}"
    finally:
        s.stop(wait=False)


@pytest.mark.rwsgi_specific(
    reason="mod_wsgi gives every application a %{RESOURCE} sub-interpreter; rwsgi runs an "
           "application that is the only one its process can run in the main interpreter")
def test_single_app_gets_main_interpreter(rwsgi_path):
    s = start_server(rwsgi_path, "WSGIScriptAlias /only {apps}/appgroup.wsgi\n", name="interp-single")
    try:
        d = s.get("/only").json()
        assert d["main_interpreter"] is True
    finally:
        s.stop(wait=False)


# --------------------------------------------------------------------------
# PyO3


PYO3_CONFIG = """
WSGIPythonHome {venv}
WSGIScriptAlias /pyo3 {apps}/pyo3_app.wsgi
<Location /pyo3>
    WSGIApplicationGroup %{GLOBAL}
</Location>
"""


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_pyo3_packages_global_group(rwsgi_path, venv, mpm):
    s = start_server(rwsgi_path, PYO3_CONFIG, mpm=mpm, name=f"pyo3-{mpm}")
    try:
        for _ in range(6):
            r = s.get("/pyo3")
            d = r.json()
            assert r.status == 200, d
            assert d["ok"] is True
            assert d["application_group"] == ""
            assert int(d["cryptography"].split(".")[0]) >= 41
            assert d["validated"] == {"name": "Ada", "age": 36}
            assert d["rejected_bad_input"] is True
    finally:
        s.stop(wait=False)


@pytest.mark.rwsgi_specific(
    reason="under mod_wsgi a PyO3 package imported in the main interpreter fails with "
           "'PyO3 modules do not yet support subinterpreters' once a %{GLOBAL} request of a "
           "thread that served a sub-interpreter app runs in that sub-interpreter",
    strict=False)
def test_pyo3_global_beside_subinterpreter_apps(rwsgi_path, venv):
    s = start_server(rwsgi_path, PYO3_CONFIG + "WSGIScriptAlias /sub {apps}/appgroup.wsgi\n"
                     "WSGIScriptAlias /env {apps}/environ.wsgi\n", name="pyo3-mixed")
    try:
        for _ in range(15):
            assert s.get("/sub").status == 200
            assert s.get("/env").status == 200
            d = s.get("/pyo3").json()
            assert d["ok"] is True, d
    finally:
        s.stop(wait=False)
