"""Apache configuration layouts that harness.py's generated httpd.conf cannot express.

DebianLayout is a copy of Debian's own /etc/apache2 (apache2.conf, envvars, ports.conf,
mods-*/, conf-*/, sites-*/) in a temporary directory, changed only where a test must differ
from a real machine:

* every ``Listen`` moves to 127.0.0.1 on a free port, and the ``<VirtualHost *:80>`` of
  000-default.conf follows it (as ports.conf's own comment tells administrators to do);
* envvars points APACHE_RUN_DIR / APACHE_LOCK_DIR / APACHE_LOG_DIR / APACHE_PID_FILE into the
  temporary directory (run/ is root-owned 0755, like /var/run/apache2);
* a2enmod / a2enconf / a2ensite run against the copy (APACHE_CONFDIR) and keep their state
  markers in the copy too (APACHE_STATE_DIRECTORY), so /etc/apache2 and /var/lib/apache2 are
  never touched.

It is started the way apache2ctl starts Apache (envvars sourced into a clean environment),
as ``apache2 -d <conf> -f <conf>/apache2.conf -D FOREGROUND``, in its own process group, and
stop() ends that whole group by PID and removes the directory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import harness
from harness import APACHE_BIN, APPS_DIR, REPO_DIR, StartError, _pids_in_group

DEBIAN_CONFDIR = Path("/etc/apache2")
A2 = {name: f"/usr/sbin/{name}" for name in ("a2enmod", "a2dismod", "a2enconf", "a2ensite")}
#: the packaging files the rwsgi Debian package installs into mods-available/
PACKAGE_LOAD = REPO_DIR / "conf" / "rwsgi.load"
PACKAGE_CONF = REPO_DIR / "conf" / "rwsgi.conf"
_UP_RE = re.compile(r"resuming normal operations")

#: background stops still running (see join_stoppers)
_STOPPERS: "list[threading.Thread]" = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def join_stoppers(timeout: float = 30):
    deadline = time.monotonic() + timeout
    for t in list(_STOPPERS):
        t.join(max(0.1, deadline - time.monotonic()))
    _STOPPERS[:] = [t for t in _STOPPERS if t.is_alive()]


def self_signed_cert(directory: Path, name: str) -> "tuple[Path, Path]":
    """A throw-away certificate (its own CA: pass it to curl --cacert) and key for `name`
    and 127.0.0.1 (openssl req -x509)."""
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
    )
    os.chmod(key, 0o600)  # read by the Apache parent (root) only
    return cert, key


def proc_uid(pid: int) -> int:
    """Real uid of a process (/proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise ValueError(f"no Uid line for pid {pid}")


class DebianLayout:
    """A copy of /etc/apache2 started like Debian starts Apache (see the module docstring)."""

    # the raw-socket HTTP client of harness.ApacheServer (needs .host/.port)
    connect = harness.ApacheServer.connect
    build_request = harness.ApacheServer.build_request
    request = harness.ApacheServer.request
    get = harness.ApacheServer.get
    post = harness.ApacheServer.post

    def __init__(self, module_path: str, name: str = "debian"):
        self.module_path = str(module_path)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port()  # for ports.conf's `<IfModule ssl_module> Listen 443`
        self.proc: "subprocess.Popen | None" = None
        self.pgid: "int | None" = None
        self.final_error_log = ""
        self.base = Path(tempfile.mkdtemp(prefix=f"rwsgi-{name}-"))
        os.chmod(self.base, 0o755)  # www-data (children, daemons) traverses to apps/ and run/
        self.conf = self.base / "apache2"
        self.apps = self.base / "apps"
        self.run_dir = self.base / "run"
        self.lock_dir = self.base / "lock"
        self.log_dir = self.base / "log"
        self.state_dir = self.base / "state"
        try:
            self._copy()
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)
            raise

    # -- the copy ----------------------------------------------------------

    def _copy(self):
        shutil.copytree(DEBIAN_CONFDIR, self.conf, symlinks=True)
        shutil.copytree(APPS_DIR, self.apps, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for d in (self.run_dir, self.lock_dir, self.log_dir, self.state_dir):
            d.mkdir(mode=0o755)
        for dirpath, _dirs, files in os.walk(self.apps):
            os.chmod(dirpath, 0o755)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o644)
        # Debian's apache2ctl gives APACHE_LOCK_DIR to the run user; APACHE_RUN_DIR stays root's
        os.chown(self.lock_dir, *_www_data())

        envvars = self.conf / "envvars"
        text = envvars.read_text()
        for system, here in (("/var/run/apache2", self.run_dir), ("/var/lock/apache2", self.lock_dir),
                             ("/var/log/apache2", self.log_dir)):
            if system not in text:
                raise RuntimeError(f"{envvars}: no {system} to redirect (Debian's envvars changed?)")
            text = text.replace(system, str(here))
        envvars.write_text(text)

        ports = {"80": self.port, "443": self.tls_port}
        ports_conf = self.conf / "ports.conf"
        text, n = re.subn(r"(?m)^(\s*)Listen\s+(\d+)\s*$",
                          lambda m: f"{m.group(1)}Listen 127.0.0.1:{ports[m.group(2)]}",
                          ports_conf.read_text())
        if n == 0:
            raise RuntimeError(f"{ports_conf}: no Listen line to move to loopback")
        ports_conf.write_text(text)
        default_site = self.conf / "sites-available" / "000-default.conf"
        text = default_site.read_text()
        if "<VirtualHost *:80>" not in text:
            raise RuntimeError(f"{default_site}: no <VirtualHost *:80> (Debian's site changed?)")
        default_site.write_text(text.replace("<VirtualHost *:80>", f"<VirtualHost *:{self.port}>"))

    def _assert_loopback_only(self):
        """Never bind anything but loopback: every Listen of the copy names 127.0.0.1."""
        for path in self.conf.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.suffix in (".conf", ""):
                for line in path.read_text(errors="replace").splitlines():
                    if re.match(r"\s*Listen\s", line) and "127.0.0.1:" not in line:
                        raise RuntimeError(f"{path}: non-loopback {line.strip()!r}")

    def tool_env(self) -> dict:
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C",
            "APACHE_CONFDIR": str(self.conf),
            "APACHE_STATE_DIRECTORY": str(self.state_dir),
        }

    def a2(self, tool: str, *names: str) -> subprocess.CompletedProcess:
        """Run a2enmod/a2dismod/a2enconf/a2ensite against the copy (not /etc/apache2)."""
        return subprocess.run([A2[tool], *names], env=self.tool_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=60)

    def module_enabled(self, name: str) -> bool:
        return (self.conf / "mods-enabled" / f"{name}.load").exists()

    def install_module_files(self):
        """What the rwsgi package installs: mods-available/rwsgi.load (+ rwsgi.conf), the
        LoadModule line naming the module under test."""
        load = re.sub(r"(?m)^LoadModule wsgi_module .*$", f"LoadModule wsgi_module {self.module_path}",
                      PACKAGE_LOAD.read_text())
        assert f"LoadModule wsgi_module {self.module_path}" in load, load
        (self.conf / "mods-available" / "rwsgi.load").write_text(load)
        conf = PACKAGE_CONF.read_text()
        if self.module_path == harness.MODWSGI_PATH:
            # Debian's mod_wsgi has its socket prefix compiled in (/var/run/apache2/wsgi, it
            # ignores DefaultRuntimeDir): keep its sockets in this copy's APACHE_RUN_DIR too
            line = "#WSGISocketPrefix /var/run/apache2/wsgi"
            assert line in conf, f"{PACKAGE_CONF} changed: no {line!r}"
            conf = conf.replace(line, "WSGISocketPrefix ${APACHE_RUN_DIR}/wsgi")
        (self.conf / "mods-available" / "rwsgi.conf").write_text(conf)

    def enable_module(self):
        """a2dismod wsgi (mod_wsgi, if Debian's package enabled it), then a2enmod rwsgi."""
        self.install_module_files()
        if self.module_enabled("wsgi"):
            self._check(self.a2("a2dismod", "-q", "wsgi"))
        self._check(self.a2("a2enmod", "rwsgi"))

    def add_conf(self, name: str, text: str):
        """conf-available/<name>.conf, enabled with a2enconf."""
        (self.conf / "conf-available" / f"{name}.conf").write_text(text)
        self._check(self.a2("a2enconf", name))

    def add_site(self, name: str, text: str):
        """sites-available/<name>.conf, enabled with a2ensite."""
        (self.conf / "sites-available" / f"{name}.conf").write_text(text)
        self._check(self.a2("a2ensite", name))

    @staticmethod
    def _check(p: subprocess.CompletedProcess):
        if p.returncode != 0:
            raise RuntimeError(f"{p.args} failed ({p.returncode}):\n{p.stdout}")

    # -- process control ---------------------------------------------------

    def env(self) -> dict:
        """The environment apache2ctl gives Apache: envvars sourced into a clean one."""
        out = subprocess.run(["env", "-i", "sh", "-c", f'. "{self.conf}/envvars" && env'],
                             check=True, stdout=subprocess.PIPE, text=True, timeout=30).stdout
        env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        env["APACHE_CONFDIR"] = str(self.conf)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        for k in ("RUST_BACKTRACE", "RWSGI_LOG"):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    def _cmd(self, *extra: str) -> list:
        return [APACHE_BIN, "-d", str(self.conf), "-f", str(self.conf / "apache2.conf"), *extra]

    def configtest(self) -> "tuple[bool, str]":
        p = subprocess.run(self._cmd("-t"), env=self.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        return p.returncode == 0, p.stdout

    @property
    def error_log_path(self) -> Path:
        return self.log_dir / "error.log"

    def error_log(self) -> str:
        try:
            return self.error_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log(self, name: str) -> str:
        try:
            return (self.log_dir / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_file_text(self, name: str, needle: str, timeout: float = 5) -> str:
        """Wait until log file `name` contains `needle` (access logs are written after the
        response); returns the file's text, raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log(name)
            if needle in text or time.monotonic() > deadline:
                assert needle in text, f"{needle!r} not in {name} within {timeout}s:\n{text[-3000:]}"
                return text
            time.sleep(0.05)

    @property
    def pid(self) -> "int | None":
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 20) -> "DebianLayout":
        self._assert_loopback_only()
        self.proc = subprocess.Popen(
            self._cmd("-D", "FOREGROUND"), env=self.env(), cwd=str(self.base),
            stdin=subprocess.DEVNULL, stdout=open(self.base / "stdout.log", "ab"),
            stderr=subprocess.STDOUT, start_new_session=True,  # own process group: pgid == pid
        )
        self.pgid = self.proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"apache2 exited with {self.proc.returncode} during start\n"
                                 f"--- error.log ---\n{self.error_log()[-4000:]}\n"
                                 f"--- stdout/stderr ---\n{(self.base / 'stdout.log').read_text()}")
            if _UP_RE.search(self.error_log()) and self._port_open():
                return self
            time.sleep(0.05)
        raise StartError(f"apache2 did not come up within {timeout}s\n{self.error_log()[-4000:]}")

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def group_pids(self) -> list:
        """Every process of this Apache (parent, children, daemon processes)."""
        return _pids_in_group(self.pgid) if self.pgid else []

    def stop(self, timeout: float = 15, wait: bool = True):
        """SIGTERM to the parent, SIGKILL after `timeout`, then SIGKILL to whatever is left
        of its process group; then remove the directory. wait=False does it in a background
        thread (join_stoppers() waits for those)."""
        if not wait:
            t = threading.Thread(target=self.stop, args=(timeout, True), daemon=True)
            t.start()
            _STOPPERS.append(t)
            return
        proc, pgid = self.proc, self.pgid
        self.proc = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            deadline = time.monotonic() + 5
            while pgid and (left := _pids_in_group(pgid)) and time.monotonic() < deadline:
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                time.sleep(0.05)
        self.final_error_log = self.error_log()
        if os.environ.get("RWSGI_KEEP_ROOT") != "1":
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __repr__(self):
        return f"<DebianLayout port={self.port} base={self.base}>"


def _www_data() -> "tuple[int, int]":
    import pwd

    pw = pwd.getpwnam("www-data")
    return pw.pw_uid, pw.pw_gid


def scoreboard_pids(layout_or_server, host: "str | None" = None) -> "set[int]":
    """PIDs of the Apache worker children, from mod_status's /server-status page (Debian
    enables mod_status with `Require local`)."""
    headers = {"Host": host} if host else None
    r = layout_or_server.get("/server-status", headers=headers)
    assert r.status == 200, r
    # the per-process table (event/worker MPM): <tr><td>slot</td><td>PID</td>...
    return {int(pid) for pid in re.findall(r"<tr><td>\d+</td><td>(\d+)</td>", r.text)}
