"""A configuration written by mod_wsgi 6's `mod_wsgi-express setup-server` (mod-wsgi from PyPI),
started with its generated `apachectl` after changing only the `LoadModule wsgi_module` line.

Each variant is what admins commonly pass to setup-server (processes/threads, --url-alias,
--mount-point, --reload-on-changes, --access-log, --https-port with a self-signed
certificate). Every variant runs twice: with the module under test (rwsgi_module()) and with
mod_wsgi 6's own module, unchanged, which checks the harness itself.

mod_wsgi-express comes from a virtualenv (RWSGI_EXPRESS_VENV, default /var/tmp/modwsgi6-venv,
made from /usr/bin/python3.11). When it is missing this module creates it with `pip install
mod-wsgi` (builds the module: needs apache2-dev and python3.11-dev) under a lock; when that
fails (no network, no compiler) the tests are skipped (a failure with CI=true). A directory
that exists without bin/mod_wsgi-express is taken to be another process creating it, and
waited for.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import _free_port, _pids_in_group, rwsgi_module
from harness import testing_modwsgi as _testing_modwsgi

VENV = Path(os.environ.get("RWSGI_EXPRESS_VENV", "/var/tmp/modwsgi6-venv"))
EXPRESS = VENV / "bin" / "mod_wsgi-express"
BASE_PYTHON = "/usr/bin/python3.11"
PIP_SPEC = os.environ.get("RWSGI_EXPRESS_SPEC", "mod-wsgi")

APP = '''\
import json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
import helper  # --reload-on-changes must notice a change to it (the script itself is not touched)

def application(environ, start_response):
    if environ.get("PATH_INFO", "").endswith("/env"):
        keys = ("SCRIPT_NAME", "PATH_INFO", "wsgi.url_scheme", "wsgi.multiprocess",
                "wsgi.multithread", "mod_wsgi.process_group", "HTTPS")
        body = json.dumps({k: environ.get(k) for k in keys}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("hello from express " + helper.VERSION + "\\n").encode()]
'''

pytestmark = pytest.mark.timeout(900)  # the first test may build the venv


# --------------------------------------------------------------------------
# the mod_wsgi-express virtualenv


def _skip_or_fail(msg: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg + " (CI=true: a missing prerequisite is a failure)", pytrace=False)
    pytest.skip(msg)


def _create_venv() -> str:
    """Create VENV and pip install mod-wsgi into it; return '' or what went wrong."""
    try:
        subprocess.run([BASE_PYTHON, "-m", "venv", str(VENV)], check=True,
                       capture_output=True, text=True, timeout=120)
        r = subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", PIP_SPEC],
                           capture_output=True, text=True, timeout=780)
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    return "" if r.returncode == 0 and EXPRESS.exists() else (r.stdout + r.stderr)[-2000:]


@pytest.fixture(scope="session")
def express() -> Path:
    if EXPRESS.exists():
        return EXPRESS
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(str(VENV) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not VENV.exists():
            err = _create_venv()
            if err:
                shutil.rmtree(VENV, ignore_errors=True)
                _skip_or_fail(f"could not create {VENV} with `pip install {PIP_SPEC}`:\n{err}")
    deadline = time.monotonic() + 600  # another process (without our lock) may be creating it
    while not EXPRESS.exists() and time.monotonic() < deadline:
        time.sleep(2)
    if not EXPRESS.exists():
        _skip_or_fail(f"{VENV} exists but has no bin/mod_wsgi-express after 10 minutes")
    return EXPRESS


# --------------------------------------------------------------------------
# one setup-server instance


class Express:
    """setup-server into a temporary server root; start/stop with the generated apachectl
    (`apachectl start -DFOREGROUND`, so Apache stays our child and nothing is orphaned)."""

    def __init__(self, express: Path, module: "str | None", extra=(), https=False):
        self.tmp = Path(tempfile.mkdtemp(prefix="rwsgi-express-"))
        os.chmod(self.tmp, 0o755)  # Apache's children and the daemons run as www-data
        self.root, self.app_dir = self.tmp / "server", self.tmp / "app"
        self.app_dir.mkdir(mode=0o755)
        (self.app_dir / "hello.wsgi").write_text(APP)
        os.chmod(self.app_dir / "hello.wsgi", 0o644)
        self.write_version("v1")
        (self.app_dir / "static.txt").write_text("static file\n")
        self.port, self.https_port = _free_port(), (_free_port() if https else None)
        self.module, self.proc = module, None
        args = [str(express), "setup-server", str(self.app_dir / "hello.wsgi"),
                "--server-root", str(self.root), "--host", "127.0.0.1", "--port", str(self.port)]
        if os.geteuid() == 0:
            args += ["--user", "www-data", "--group", "www-data"]
        if https:
            args += self._https_args()
        args += [a.replace("{app}", str(self.app_dir)) for a in extra]
        r = subprocess.run(args, cwd=self.tmp, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise AssertionError(f"setup-server failed:\n{r.stdout}{r.stderr}")
        if module is not None:
            self._swap_load_module(module)

    def write_version(self, version: str):
        path = self.app_dir / "helper.py"
        path.write_text(f"VERSION = {version!r}\n")
        os.chmod(path, 0o644)

    def _https_args(self):
        key, crt = self.tmp / "test.key", self.tmp / "test.crt"
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-keyout",
                        str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True, timeout=60)
        return ["--https-port", str(self.https_port), "--server-name", "localhost",
                "--ssl-certificate-file", str(crt), "--ssl-certificate-key-file", str(key)]

    def _swap_load_module(self, module: str):
        conf = self.root / "httpd.conf"
        lines = conf.read_text().split("\n")
        hits = [i for i, ln in enumerate(lines) if ln.startswith("LoadModule wsgi_module ")]
        assert len(hits) == 1, f"expected one LoadModule wsgi_module line, found {len(hits)}"
        lines[hits[0]] = f"LoadModule wsgi_module '{module}'"
        conf.write_text("\n".join(lines))

    # -- control ---------------------------------------------------------------

    def apachectl(self, *argv, timeout=60):
        return subprocess.run([str(self.root / "apachectl"), *argv], capture_output=True,
                              text=True, timeout=timeout)

    def configtest(self) -> "tuple[bool, str]":
        r = self.apachectl("configtest")
        out = "\n".join(ln for ln in (r.stdout + r.stderr).splitlines() if "setlocale" not in ln)
        return r.returncode == 0, out

    def start(self):
        self.out = open(self.tmp / "apachectl.out", "w")
        self.proc = subprocess.Popen([str(self.root / "apachectl"), "start", "-DFOREGROUND"],
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.apachectl("stop", timeout=30)
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.send_signal(signal.SIGKILL)
                    self.proc.wait(5)
            for pid in _pids_in_group(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc = None
            self.out.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def error_log(self) -> str:
        p = self.root / "error_log"
        return p.read_text(errors="replace") if p.exists() else ""

    def diagnostics(self) -> str:
        out = (self.tmp / "apachectl.out")
        text = out.read_text(errors="replace") if out.exists() else ""
        return f"apachectl output:\n{text}\nerror_log (tail):\n" + "\n".join(
            self.error_log().splitlines()[-40:])

    # -- requests --------------------------------------------------------------

    def get(self, path: str, https=False, timeout=20.0) -> "tuple[int, bytes]":
        """GET, retrying while the server is still coming up (refused / reset)."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"Apache exited ({self.proc.returncode})\n"
                                     + self.diagnostics())
            try:
                return self._get_once(path, https)
            except (ConnectionError, OSError, http.client.HTTPException) as e:
                last = e
                time.sleep(0.3)
        raise AssertionError(f"GET {path}: no answer in {timeout} s ({last!r})\n"
                             + self.diagnostics())

    def _get_once(self, path, https):
        if https:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=10,
                                               context=ctx)
            host = f"localhost:{self.https_port}"
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            host = f"localhost:{self.port}" if self.https_port else f"127.0.0.1:{self.port}"
        try:
            conn.request("GET", path, headers={"Host": host})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


# --------------------------------------------------------------------------
# variants


def check_basic(srv: Express):
    assert srv.get("/") == (200, b"hello from express v1\n")


def check_processes(srv: Express):
    assert srv.get("/") == (200, b"hello from express v1\n")
    status, body = srv.get("/env")
    env = json.loads(body)
    assert status == 200 and env["wsgi.multiprocess"] is True and env["wsgi.multithread"] is True
    conf = (srv.root / "httpd.conf").read_text()
    assert "processes=2" in conf and "threads=5" in conf


def check_url_alias(srv: Express):
    assert srv.get("/static/static.txt") == (200, b"static file\n")
    assert srv.get("/") == (200, b"hello from express v1\n")


def check_mount_point(srv: Express):
    assert srv.get("/app/") == (200, b"hello from express v1\n")
    status, body = srv.get("/app/sub/env")
    env = json.loads(body)
    assert status == 200 and (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/sub/env")


def check_reload(srv: Express):
    assert srv.get("/") == (200, b"hello from express v1\n")
    time.sleep(1.1)  # a later mtime than the first load
    srv.write_version("v2")  # a module the script imports: only the change monitor sees it
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if srv.get("/") == (200, b"hello from express v2\n"):
            return
        time.sleep(0.5)
    raise AssertionError("the change was not picked up in 20 s\n" + srv.diagnostics())


def check_access_log(srv: Express):
    assert srv.get("/") == (200, b"hello from express v1\n")
    log = srv.root / "access_log"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and '"GET / HTTP/1.1" 200' not in (
            log.read_text() if log.exists() else ""):
        time.sleep(0.2)
    assert '"GET / HTTP/1.1" 200' in log.read_text()


def check_https(srv: Express):
    assert srv.get("/", https=True) == (200, b"hello from express v1\n")
    status, body = srv.get("/env", https=True)
    assert status == 200 and json.loads(body)["wsgi.url_scheme"] == "https"
    assert srv.get("/") == (200, b"hello from express v1\n")


VARIANTS = {
    "basic": ((), False, check_basic),
    "processes-threads": (("--processes", "2", "--threads", "5"), False, check_processes),
    "url-alias": (("--url-alias", "/static", "{app}"), False, check_url_alias),
    "mount-point": (("--mount-point", "/app"), False, check_mount_point),
    "reload-on-changes": (("--reload-on-changes",), False, check_reload),
    "access-log": (("--access-log",), False, check_access_log),
    "https": ((), True, check_https),
}


def _module_for(which: str) -> "str | None":
    if which == "modwsgi6":
        return None  # the generated LoadModule line, unchanged
    if _testing_modwsgi():
        pytest.skip("mod_wsgi 4.9.4 rejects express 6.x's daemon options (interrupt-timeout=, "
                    "response-flush-delay=); this test is about the module under test")
    path = rwsgi_module()
    if not Path(path).is_file():
        _skip_or_fail(f"module under test not built: {path}")
    return path


@pytest.mark.parametrize("which", ["rwsgi", "modwsgi6"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_express_setup_server(express, variant, which):
    extra, https, check = VARIANTS[variant]
    srv = Express(express, _module_for(which), extra, https=https)
    try:
        ok, out = srv.configtest()
        assert ok, f"apachectl configtest failed:\n{out}"
        srv.start()
        try:
            check(srv)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{srv.diagnostics()}") from None
    finally:
        srv.stop()
