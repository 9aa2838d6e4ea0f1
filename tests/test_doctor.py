"""`rwsgi doctor -f <config>` against real configurations, each with one of the traps mod_wsgi
users fall into, built for the test: every finding names file:line, what is wrong and the fix;
exit status 1 with findings, 0 for a clean configuration (it must not cry wolf).

Run as root (the checks about other users' access need files root owns and www-data cannot
read); www-data is Debian's Apache user, present wherever apache2 is installed."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness import ApacheServer, rwsgi_command, rwsgi_module

pytestmark = [
    pytest.mark.rwsgi_specific("an rwsgi command"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build files www-data cannot read"),
]

BUILT = "%d.%d" % sys.version_info[:2]  # the tests' Python is the one rwsgi is built against


def doctor(srv):
    srv.write_config()
    p = subprocess.run([rwsgi_command(), "doctor", "-f", str(srv.conf_path)],
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def line_of(srv, text):
    """The line number of `text` in the server's configuration file."""
    for i, line in enumerate(srv.conf_path.read_text().splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(f"{text!r} not in {srv.conf_path}")


@pytest.fixture
def tree():
    """A directory every user can enter (pytest's tree is under a root-only 0700 one)."""
    d = tempfile.mkdtemp(prefix="rwsgi-doctor-files-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server():
    servers = []

    def make(config):
        s = ApacheServer(rwsgi_module(), config=config, name="doctor")
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop(wait=False)


def test_a_clean_configuration_has_nothing_to_say(server):
    srv = server("WSGIDaemonProcess clean threads=2\n"
                 "WSGIScriptAlias /a {apps}/hello.wsgi process-group=clean\n"
                 "WSGIScriptAlias /b {apps}/hello.wsgi\n")
    code, out = doctor(srv)
    assert code == 0, out
    assert out.strip().endswith("rwsgi doctor: no problems found"), out


def test_a_missing_script_is_named_with_its_line(server):
    srv = server("WSGIScriptAlias /gone {apps}/no-such-app.wsgi\n")
    code, out = doctor(srv)
    assert code == 1, out
    n = line_of(srv, "no-such-app.wsgi")
    assert re.search(r"%s:%d: WSGIScriptAlias target .*/no-such-app\.wsgi does not exist"
                     % (re.escape(str(srv.conf_path)), n), out), out
    assert "fix: " in out


def test_a_script_the_daemon_user_cannot_read(server, tree):
    private = tree / "private"
    private.mkdir()
    script = private / "app.wsgi"
    shutil.copy(os.path.join(os.path.dirname(__file__), "apps", "hello.wsgi"), script)
    os.chmod(private, 0o700)  # root only
    srv = server("WSGIDaemonProcess tenant user=www-data group=www-data\n"
                 f"WSGIScriptAlias /t {script} process-group=tenant\n")
    code, out = doctor(srv)
    assert code == 1, out
    assert re.search(r":%d: .*app\.wsgi is run by daemon process group 'tenant' \(user www-data\), "
                     r"but user www-data cannot enter .*private" % line_of(srv, "/t "), out), out
    assert "user=" in out  # the fix names the way out


def test_a_python_home_of_another_python(server, tree):
    home = tree / "venv312"
    (home / "lib" / "python3.12").mkdir(parents=True)
    (home / "pyvenv.cfg").write_text("home = /usr/local/bin\nversion = 3.12.4\n")
    srv = server(f"WSGIDaemonProcess old python-home={home}\n")
    code, out = doctor(srv)
    assert code == 1, out
    assert (f"python-home={home} is a Python 3.12 environment; this rwsgi is built for "
            f"Python {BUILT}") in out, out
    assert f"python{BUILT} -m venv" in out


def test_a_python_home_that_is_not_one(server, tree):
    home = tree / "empty"
    home.mkdir()
    srv = server(f"WSGIDaemonProcess e python-home={home}\n")
    code, out = doctor(srv)
    assert code == 1 and "is neither a virtualenv (no pyvenv.cfg) nor a Python prefix" in out, out


def test_mod_wsgi_enabled_beside_rwsgi(server):
    so = "/usr/lib/apache2/modules/mod_wsgi.so"
    if not os.path.exists(so):
        pytest.skip("Debian's libapache2-mod-wsgi-py3 is not installed")
    srv = server(f"LoadModule wsgi_module {so}\n")
    code, out = doctor(srv)
    assert code == 1, out
    assert re.search(r":%d: %s is loaded as wsgi_module beside rwsgi \(.*:\d+\)"
                     % (line_of(srv, so), re.escape(so)), out), out
    assert "a2dismod wsgi" in out


def test_a_socket_directory_that_does_not_exist(server, tree):
    srv = server(f"WSGISocketPrefix {tree}/nowhere/wsgi\n")
    code, out = doctor(srv)
    assert code == 1, out
    assert f"the socket directory {tree}/nowhere does not exist" in out, out


def test_a_configuration_apache_rejects_is_still_examined(server):
    srv = server("WSGIScriptAlias /gone {apps}/no-such-app.wsgi\nThisIsNotADirective on\n")
    code, out = doctor(srv)
    assert code == 1, out
    assert "Apache cannot read this configuration" in out and "ThisIsNotADirective" in out, out
    assert "no-such-app.wsgi does not exist" in out, out


ONCE_PER_PROCESS = '''
# Behaves like a PyO3 extension module: a second interpreter of the same process may not
# initialise it (the process environment is shared by every interpreter, as a C module's
# static state is).
import os
if os.environ.get("RWSGI_DOCTOR_ONCE"):
    raise ImportError("PyO3 modules may only be initialized once per interpreter process")
os.environ["RWSGI_DOCTOR_ONCE"] = "1"
'''

ONE_APP = '''
import once_per_process


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"one"]
'''


def test_an_extension_that_refuses_sub_interpreters(server, tree):
    (tree / "once_per_process.py").write_text(ONCE_PER_PROCESS)
    (tree / "one.wsgi").write_text(ONE_APP)
    for f in tree.iterdir():
        os.chmod(f, 0o644)
    # two applications reach the Apache children: each gets a sub-interpreter (rwsgi's rule)
    srv = server(f"WSGIScriptAlias /one {tree}/one.wsgi\nWSGIScriptAlias /two {{apps}}/hello.wsgi\n")
    code, out = doctor(srv)
    assert code == 1, out
    assert re.search(r":%d: .*one\.wsgi is run in a sub-interpreter; it imports there once, but a "
                     r"second sub-interpreter in the same process .* fails: .*PyO3 modules may only "
                     r"be initialized once per interpreter process" % line_of(srv, "/one "), out), out
    assert "application-group=%{GLOBAL}" in out
    assert "hello.wsgi" not in out  # the other one imports fine
    # in the main interpreter: nothing to say; and --no-import does not try
    srv = server(f"WSGIScriptAlias /one {tree}/one.wsgi application-group=%{{GLOBAL}}\n"
                 "WSGIScriptAlias /two {apps}/hello.wsgi\n")
    code, out = doctor(srv)
    assert code == 0, out


def test_a_real_pyo3_extension_in_two_sub_interpreters(server, tree):
    # pydantic-core (PyO3, in the test venv): imports in one sub-interpreter, refuses the second
    (tree / "pyd.wsgi").write_text("import pydantic_core\n" + ONE_APP.replace("import once_per_process\n", ""))
    os.chmod(tree / "pyd.wsgi", 0o644)
    srv = server("WSGIPythonHome {venv}\n"
                 f"WSGIScriptAlias /pyd {tree}/pyd.wsgi\nWSGIScriptAlias /two {{apps}}/hello.wsgi\n")
    code, out = doctor(srv)
    assert code == 1, out
    assert "pyd.wsgi is run in a sub-interpreter; it imports there once" in out, out
    assert "PyO3 modules do not yet support subinterpreters" in out, out


def test_a_debian_layout_site_read_through_apache_confdir():
    """Debian's layout (apache2.conf, mods-enabled via a2enmod, a site enabled with a2ensite)
    in a copy named by APACHE_CONFDIR, as apache2ctl and the a2en* tools take it: doctor reads
    that copy (its envvars, its Include chain), names the site file and line, and is quiet
    once the site is fixed."""
    from layouts import DebianLayout

    deb = DebianLayout(rwsgi_module(), name="doctor-debian")
    try:
        deb.enable_module()
        deb.add_site("shop", (
            f"<VirtualHost 127.0.0.1:{deb.port}>\n"
            "    ServerName shop.test\n"
            "    WSGIDaemonProcess shop threads=2\n"
            f"    WSGIScriptAlias / {deb.apps}/shop.wsgi process-group=shop\n"
            "</VirtualHost>\n"))

        def run():
            p = subprocess.run([rwsgi_command(), "doctor"], env=deb.tool_env(),
                               capture_output=True, text=True, timeout=120)
            return p.returncode, p.stdout + p.stderr

        code, out = run()
        site = deb.conf / "sites-enabled" / "shop.conf"
        assert code == 1, out
        assert re.search(r"%s:4: WSGIScriptAlias target .*/shop\.wsgi does not exist"
                         % re.escape(str(site)), out), out
        assert "/etc/apache2/" not in out, out
        shutil.copy(os.path.join(os.path.dirname(__file__), "apps", "hello.wsgi"),
                    deb.apps / "shop.wsgi")
        os.chmod(deb.apps / "shop.wsgi", 0o644)
        code, out = run()
        assert code == 0, out
    finally:
        deb.stop()
