"""`rwsgi serve` driven as a user would: spawn it, wait for its URL line, request pages,
send SIGINT, and check that nothing is left running and the port is free again."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

import harness
from harness import APPS_DIR, REPO_DIR, _free_port, venv_path

RWSGI = REPO_DIR / "target" / "release" / "rwsgi"

pytestmark = pytest.mark.skipif(harness.testing_modwsgi(), reason="the rwsgi command is rwsgi's own")


@pytest.fixture(autouse=True)
def no_server_root_left():
    """`rwsgi serve` keeps its server root, /tmp/rwsgi-<port>-<uid>, after it stops (its logs
    are there, as mod_wsgi-express keeps its own); a test's random port must not leave one."""
    def roots():
        return set(Path("/tmp").glob(f"rwsgi-*-{os.getuid()}"))
    before = roots()
    yield
    for d in roots() - before:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def appdir():
    d = Path(tempfile.mkdtemp(prefix="rwsgi-cli-"))
    os.chmod(d, 0o755)
    for name in ("hello.wsgi", "flask_app.py", "import_error.wsgi", "environ.wsgi"):
        shutil.copy(APPS_DIR / name, d / name)
        os.chmod(d / name, 0o644)
    (d / "templates").mkdir(mode=0o755)
    for t in (APPS_DIR / "templates").glob("*") if (APPS_DIR / "templates").exists() else []:
        shutil.copy(t, d / "templates" / t.name)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Serve:
    def __init__(self, *args, port=None):
        if not RWSGI.exists():
            pytest.fail(f"{RWSGI} not built (scripts/build)")
        self.port = port or _free_port()
        self.proc = subprocess.Popen([str(RWSGI), "serve", *map(str, args), "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []

    def wait_url(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if f"http://127.0.0.1:{self.port}/" in line:
                return line
        pytest.fail("no URL line:\n" + "".join(self.lines))

    def get(self, path="/", timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # nothing may be left of the server: no process of its session, the port free
        left = subprocess.run(["pgrep", "-s", str(self.proc.pid)], capture_output=True, text=True).stdout
        assert not left.strip(), left
        with socket.socket() as s:  # as a server would: TIME_WAIT leftovers do not count
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_serve_hello(appdir, mode):
    args = [appdir / "hello.wsgi"] + (["--embedded"] if mode == "embedded" else [])
    s = Serve(*args)
    try:
        line = s.wait_url()
        assert ("daemon" in line) == (mode == "daemon")
        assert s.get("/") == (200, b"Hello, World!")
    finally:
        s.stop()
    assert s.proc.returncode == 0


def test_serve_flask_in_venv(appdir):
    s = Serve(appdir / "flask_app.py", "--python-home", venv_path())
    try:
        s.wait_url()
        status, body = s.get("/")
        assert status == 200, body
    finally:
        s.stop()


def test_reload_on_changes(appdir):
    app = appdir / "hello.wsgi"
    s = Serve(app, "--reload-on-changes")
    try:
        s.wait_url()
        assert s.get("/")[1] == b"Hello, World!"
        app.write_text(app.read_text().replace("Hello, World!", "Hello, again!"))
        deadline = time.monotonic() + 15
        while s.get("/")[1] != b"Hello, again!":
            assert time.monotonic() < deadline, "no reload"
            time.sleep(0.3)
    finally:
        s.stop()


def test_serve_module_and_static_files(appdir):
    """--module runs module:callable through a generated handler in the server root, a
    --url-alias directory is served beside it."""
    (appdir / "mymod.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from a module']\n")
    static = appdir / "static"
    static.mkdir(mode=0o755)
    (static / "a.txt").write_text("static a\n")
    os.chmod(static / "a.txt", 0o644)
    s = Serve("--module", "mymod:app", "--python-path", appdir, "--url-alias", "/static", static)
    try:
        s.wait_url()
        assert s.get("/") == (200, b"from a module")
        assert s.get("/static/a.txt") == (200, b"static a\n")
    finally:
        s.stop()


def test_serve_django_project_layout(appdir):
    """--django DIR finds DIR/<name>/wsgi.py, with DIR on sys.path (the package imports)."""
    project = appdir / "site1"
    (project / "site1").mkdir(parents=True, mode=0o755)
    os.chmod(project, 0o755)
    (project / "site1" / "__init__.py").write_text("GREETING = b'django layout'\n")
    (project / "site1" / "wsgi.py").write_text(
        "from site1 import GREETING\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [GREETING]\n")
    for f in (project / "site1").iterdir():
        os.chmod(f, 0o644)
    s = Serve(project, "--django")
    try:
        s.wait_url()
        assert s.get("/") == (200, b"django layout")
    finally:
        s.stop()


def test_missing_app_is_a_one_line_error(appdir):
    p = subprocess.run([str(RWSGI), "serve", str(appdir / "nope.wsgi")], capture_output=True, text=True)
    assert p.returncode == 1 and "no such file" in p.stderr


def test_import_error_shows_the_traceback(appdir):
    p = subprocess.run([str(RWSGI), "serve", str(appdir / "import_error.wsgi"), "--port", str(_free_port())],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "fails to import" in p.stderr and "Traceback" in p.stderr


def test_port_in_use(appdir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = subprocess.run([str(RWSGI), "serve", str(appdir / "hello.wsgi"), "--port", str(port)],
                           capture_output=True, text=True)
    assert p.returncode == 1 and "already in use" in p.stderr


def test_setup_only_and_module_config(appdir):
    root = appdir / "root"
    p = subprocess.run([str(RWSGI), "serve", str(appdir / "hello.wsgi"), "--setup-only", "--server-root", str(root)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (root / "httpd.conf").exists() and os.access(root / "apachectl", os.X_OK)
    conf = (root / "httpd.conf").read_text()
    assert "WSGIScriptAlias / " in conf and "ErrorLog /dev/stderr" in conf.replace('"', "")
    # --no-log-to-terminal: the error log goes to a file in the server root
    p = subprocess.run([str(RWSGI), "serve", str(appdir / "hello.wsgi"), "--setup-only", "--server-root",
                        str(root), "--no-log-to-terminal"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "ErrorLog %s/error.log" % root in (root / "httpd.conf").read_text().replace('"', "")
    m = subprocess.run([str(RWSGI), "module-config"], capture_output=True, text=True, env={**os.environ, "VIRTUAL_ENV": "/srv/venv"})
    assert m.stdout.startswith("LoadModule wsgi_module ") and 'WSGIPythonHome "/srv/venv"' in m.stdout
    v = subprocess.run([str(RWSGI), "--version"], capture_output=True, text=True)
    assert "Apache/2.4" in v.stdout and "Python 3.11" in v.stdout


def test_missing_apache_is_a_one_line_error(appdir, tmp_path):
    # Where rwsgi looks for apache2 (RWSGI_APACHE, else /usr/sbin/apache2) holds nothing, and
    # PATH has no apache2 either: a one-line error that says how to fix it, and nothing started.
    missing = tmp_path / "sbin" / "apache2"
    env = {**os.environ, "RWSGI_APACHE": str(missing), "PATH": "/usr/bin:/bin"}
    p = subprocess.Popen([str(RWSGI), "serve", str(appdir / "hello.wsgi"), "--port", str(_free_port())],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 1, (out, err)
    assert out == ""
    assert err == f"rwsgi: apache2 not found at {missing}: install Apache with `sudo apt-get install apache2`" \
                  " or correct RWSGI_APACHE\n"
    left = subprocess.run(["pgrep", "-s", str(p.pid)], capture_output=True, text=True).stdout
    assert not left.strip(), left


@pytest.mark.skipif(os.geteuid() != 0, reason="started as root, the application runs as --user")
def test_an_application_its_user_cannot_read_stops_before_starting(appdir):
    # Started as root, Apache's children and the daemon run as www-data: an application only
    # root can read used to start ("serving ...") and answer every request 403.
    private = appdir / "private"
    private.mkdir(mode=0o700)
    shutil.copy(appdir / "hello.wsgi", private / "app.wsgi")
    port = _free_port()
    p = subprocess.run([str(RWSGI), "serve", str(private / "app.wsgi"), "--port", str(port)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert (f"{private}/app.wsgi is not readable by www-data, the user the application runs as "
            f"when rwsgi serve is started as root (user www-data cannot enter {private}") in err
    assert "chmod o+r" in err and "--user" in err
    assert "serving" not in p.stdout
    # with a user that can read it, it serves
    os.chmod(private, 0o755)
    s = Serve(private / "app.wsgi", "--user", "www-data", port=port)
    try:
        s.wait_url()
        assert s.get("/")[0] == 200
    finally:
        s.stop()


PROD_APP = '''
import os, sys
def app2(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/env":
        body = os.environ.get("RWSGI_TEST_VAR", "unset").encode()
    elif path == "/cwd":
        body = os.getcwd().encode()
    elif path == "/scheme":
        body = environ["wsgi.url_scheme"].encode()
    else:
        body = b"compress me " * 200
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''


def _self_signed(d):
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    os.chmod(key, 0o644)
    return cert, key


def test_production_options(appdir):
    """--https-port with a certificate, --compress-responses, --include-file, --log-directory,
    --pid-file, --callable-object, --working-directory, --envvars-script: each one's effect,
    through one running server."""
    import gzip
    import ssl
    (appdir / "prod.wsgi").write_text(PROD_APP)
    os.chmod(appdir / "prod.wsgi", 0o644)
    cert, key = _self_signed(appdir)
    work = appdir / "work"
    work.mkdir(mode=0o755)
    (appdir / "included.txt").write_text("from an included file\n")
    os.chmod(appdir / "included.txt", 0o644)
    extra = appdir / "extra.conf"
    extra.write_text(f'Alias /included.txt "{appdir}/included.txt"\n')
    logs, pid = appdir / "logs", appdir / "httpd.pid"
    envvars = appdir / "envvars"
    envvars.write_text("export RWSGI_TEST_VAR=from-envvars\n")
    https = _free_port()
    s = Serve(appdir / "prod.wsgi", "--callable-object", "app2", "--https-port", https,
              "--ssl-certificate-file", cert, "--ssl-certificate-key-file", key,
              "--compress-responses", "--include-file", extra, "--log-directory", logs,
              "--access-log", "--pid-file", pid, "--working-directory", work,
              "--envvars-script", envvars)
    try:
        line = s.wait_url()
        assert f"https://127.0.0.1:{https}/" in line
        assert s.get("/env") == (200, b"from-envvars")
        assert s.get("/cwd") == (200, str(work).encode())
        assert s.get("/included.txt") == (200, b"from an included file\n")
        req = urllib.request.Request(f"http://127.0.0.1:{s.port}/big",
                                     headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(r.read()) == b"compress me " * 200
        ctx = ssl._create_unverified_context()
        with urllib.request.urlopen(f"https://127.0.0.1:{https}/scheme", context=ctx, timeout=10) as r:
            assert r.read() == b"https"
        assert int(pid.read_text().split()[0]) > 1
        assert (logs / "error_log").exists()
        assert "GET /env" in (logs / "access_log").read_text()
    finally:
        s.stop()


def test_hup_and_usr1_restart_apache_as_apache_does(appdir):
    s = Serve(appdir / "hello.wsgi")
    try:
        s.wait_url()
        for sig, words in ((signal.SIGUSR1, "graceful restart"), (signal.SIGHUP, "restart")):
            s.proc.send_signal(sig)
            deadline = time.monotonic() + 10
            while True:
                line = s.proc.stdout.readline()
                s.lines.append(line)
                if f"Apache {words}" in line:
                    break
                assert line and time.monotonic() < deadline, "".join(s.lines)
            time.sleep(1)
            assert s.get("/") == (200, b"Hello, World!")
    finally:
        s.stop()
    assert s.proc.returncode == 0


def test_django_static_and_media_files(appdir):
    """--django serves STATIC_URL from STATIC_ROOT (with DEBUG=False, where Django does not
    serve them itself), and says why MEDIA_URL is not served when MEDIA_ROOT is not set."""
    project = appdir / "shop"
    pkg = project / "shop"
    pkg.mkdir(parents=True)
    static = appdir / "collected"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body { color: red }\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text(
        f"SECRET_KEY = 'x'\nDEBUG = False\nALLOWED_HOSTS = ['*']\nROOT_URLCONF = 'shop.urls'\n"
        f"INSTALLED_APPS = ['django.contrib.staticfiles']\nSTATIC_URL = '/static/'\n"
        f"STATIC_ROOT = {str(static)!r}\nMIDDLEWARE = []\n")
    (pkg / "urls.py").write_text(
        "from django.http import HttpResponse\nfrom django.urls import path\n"
        "urlpatterns = [path('', lambda r: HttpResponse(b'shop home'))]\n")
    (pkg / "wsgi.py").write_text(
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings')\n"
        "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n")
    for d, dirs, files in os.walk(appdir):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    s = Serve(project, "--django", "--python-home", venv_path())
    try:
        s.wait_url()
        assert s.get("/") == (200, b"shop home")
        assert s.get("/static/css/site.css") == (200, b"body { color: red }\n")
        said = "".join(s.lines)
        assert "Django's MEDIA_ROOT is not set" not in said  # MEDIA_URL is '' by default
    finally:
        s.stop()


def test_status_page(appdir):
    """--status mounts the status page (for local clients) and says where."""
    s = Serve(appdir / "hello.wsgi", "--status", "/admin/status")
    try:
        line = s.wait_url()
        assert f"status page http://127.0.0.1:{s.port}/admin/status" in line
        assert s.get("/") == (200, b"Hello, World!")
        code, body = s.get("/admin/status?json")
        assert code == 200
        doc = json.loads(body)
        g = next(g for g in doc["groups"] if g["mode"] == "daemon")
        assert g["name"] == f"127.0.0.1:{s.port}" and g["apache"]["requests"] == 1
        assert len(g["processes"]) == 1 and g["processes"][0]["pid"] > 0
    finally:
        s.stop()
