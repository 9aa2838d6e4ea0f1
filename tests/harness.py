"""Integration-test harness: a real Apache httpd 2.4 on a free loopback port.

Every ApacheServer gets a fresh temporary ServerRoot containing a generated
httpd.conf, a copy of tests/apps (so the Apache children, which run as
www-data when the tests run as root, can read the scripts even when the
checkout lives under a 0700 directory), its error log, pid file and runtime
files. Servers are started in the foreground in their own process group and
stopped by pid (SIGTERM, then SIGKILL, then SIGKILL to whatever is left of the
process group), so no test leaves an apache2 process behind.

Placeholders substituted in the site ``config`` text (plain string replacement,
so regex braces such as ``\\d{2}`` are left alone):

    {root}   the server's temporary ServerRoot
    {apps}   {root}/apps, the copy of tests/apps
    {var}    {root}/var, a world-writable directory for apps' state files
    {venv}   the test virtualenv (RWSGI_VENV, default /var/tmp/rwsgi-venv)
    {port}   the port Apache listens on (127.0.0.1 only)
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent
APPS_DIR = TESTS_DIR / "apps"

APACHE_BIN = os.environ.get("RWSGI_APACHE_BIN", "/usr/sbin/apache2")
APACHE_MODULES = Path(os.environ.get("RWSGI_APACHE_MODULES", "/usr/lib/apache2/modules"))
MODWSGI_PATH = "/usr/lib/apache2/modules/mod_wsgi.so"
DEFAULT_VENV = "/var/tmp/rwsgi-venv"

MPMS = ("event", "worker", "prefork")

# Apache's "server is up" line (AH00489 / AH00094 depending on the start path).
_UP_RE = re.compile(r"resuming normal operations")


# --------------------------------------------------------------------------
# module selection


def modwsgi_module() -> str:
    """Debian's mod_wsgi 4.9.4 (the reference implementation)."""
    return MODWSGI_PATH


def testing_modwsgi() -> bool:
    """True when RWSGI_TEST_MODULE=modwsgi: rwsgi tests run against mod_wsgi."""
    return os.environ.get("RWSGI_TEST_MODULE", "").strip().lower() in ("modwsgi", "mod_wsgi")


def rwsgi_module() -> str:
    """The module under test.

    RWSGI_TEST_MODULE=modwsgi -> Debian's mod_wsgi (validates the tests today);
    else RWSGI_MODULE, else <repo>/target/release/mod_rwsgi.so.
    """
    if testing_modwsgi():
        return modwsgi_module()
    env = os.environ.get("RWSGI_MODULE")
    if env:
        return str(Path(env).resolve())
    return str(REPO_DIR / "target" / "release" / "mod_rwsgi.so")


def rwsgi_command() -> str:
    """The `rwsgi` command: RWSGI_COMMAND, else the one next to the module under test, else
    <repo>/target/release/rwsgi (it also writes the harness's server skeleton, so it is needed
    when the module under test is mod_wsgi)."""
    env = os.environ.get("RWSGI_COMMAND")
    if env:
        return env
    beside = Path(rwsgi_module()).with_name("rwsgi")
    if not testing_modwsgi() and beside.is_file():
        return str(beside)
    return str(REPO_DIR / "target" / "release" / "rwsgi")


def venv_path() -> str:
    return os.environ.get("RWSGI_VENV", DEFAULT_VENV)


# --------------------------------------------------------------------------
# errors


class ApacheError(RuntimeError):
    pass


class ConfigError(ApacheError):
    """`apache2 -t` rejected the generated configuration."""

    def __init__(self, output: str):
        super().__init__(f"apache2 configtest failed:\n{output}")
        self.output = output


class StartError(ApacheError):
    pass


# --------------------------------------------------------------------------
# HTTP client (raw sockets so that framing problems stay visible)


@dataclass
class Response:
    status: int
    reason: str
    headers: list  # [(name, value), ...] in wire order
    body: bytes
    raw: bytes = b""
    http_version: str = "HTTP/1.1"
    #: the body ended the way its framing said it would (full Content-Length,
    #: terminating 0-chunk, or EOF for close-delimited bodies)
    complete: bool = True
    #: body framing was Transfer-Encoding: chunked
    chunked: bool = False
    #: for chunked bodies: the terminating "0\r\n\r\n" arrived
    chunked_terminated: bool = False
    #: the read timed out before the body was complete
    timed_out: bool = False
    #: the server closed the connection (EOF seen)
    closed: bool = False
    elapsed: float = 0.0
    #: bytes the server sent after the framed body (e.g. the excess of a body
    #: longer than its Content-Length)
    trailing: bytes = b""

    def header(self, name: str, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name: str) -> list:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        import json

        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        b = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return f"<Response {self.status} {self.reason!r} headers={self.headers!r} body={b!r}>"


class _Reader:
    """Buffered reader over a socket that tolerates timeouts and EOF."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.buf = b""
        self.raw = bytearray()
        self.eof = False
        self.deadline = deadline

    def _fill(self) -> bool:
        if self.eof:
            return False
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline reached")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.raw += data
        self.buf += data
        return True

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            if not self._fill():
                line, self.buf = self.buf, b""
                return line
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_all(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out


def _read_head(reader: _Reader):
    line = reader.readline()
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines
        line = reader.readline()
    if not line:
        raise ConnectionError("connection closed before a response arrived")
    parts = line.rstrip(b"\r\n").decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"bad status line: {line!r}")
    version, status = parts[0], int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    while True:
        h = reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        h = h.rstrip(b"\r\n").decode("latin-1")
        if h[:1] in (" ", "\t") and headers:  # obsolete line folding
            k, v = headers[-1]
            headers[-1] = (k, v + " " + h.strip())
            continue
        k, _, v = h.partition(":")
        headers.append((k.strip(), v.strip()))
    return version, status, reason, headers


def _read_response(reader: _Reader, method: str) -> Response:
    t0 = time.monotonic()
    version, status, reason, headers = _read_head(reader)
    while 100 <= status < 200 and status != 101:  # interim responses
        version, status, reason, headers = _read_head(reader)
    resp = Response(status=status, reason=reason, headers=headers, body=b"", http_version=version)
    te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding").lower()
    cl = resp.header("content-length")
    body = bytearray()
    try:
        if method.upper() == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in te:
            resp.chunked = True
            resp.complete = False
            while True:
                size_line = reader.readline()
                if not size_line:
                    break
                size_txt = size_line.split(b";", 1)[0].strip()
                try:
                    size = int(size_txt, 16)
                except ValueError:
                    # not chunked after all (e.g. an app that set the header
                    # itself): keep whatever arrives as body
                    body += size_line + reader.read_all()
                    break
                if size == 0:
                    # trailers until blank line
                    while True:
                        t = reader.readline()
                        if t in (b"\r\n", b"\n"):
                            resp.chunked_terminated = True
                            resp.complete = True
                            break
                        if not t:
                            break
                    break
                data = reader.read(size)
                body += data
                if len(data) < size:
                    break
                reader.read(2)  # CRLF after chunk data
        elif cl is not None:
            try:
                n = int(cl)
            except ValueError:
                n = None
            if n is None:
                body += reader.read_all()
            else:
                data = reader.read(n)
                body += data
                resp.complete = len(data) == n
        else:
            body += reader.read_all()
    except (socket.timeout, TimeoutError):
        resp.timed_out = True
        resp.complete = False
        body += reader.buf
        reader.buf = b""
    resp.body = bytes(body)
    resp.closed = reader.eof
    resp.elapsed = time.monotonic() - t0
    return resp


def parse_response(raw: bytes, method: str = "GET") -> Response:
    """Parse raw response bytes (e.g. from raw_request) into a Response."""

    class _Fake:
        def __init__(self, data):
            self.data = data

        def settimeout(self, t):
            pass

        def recv(self, n):
            out, self.data = self.data[:n], self.data[n:]
            return out

    reader = _Reader(_Fake(raw), time.monotonic() + 3600)
    resp = _read_response(reader, method)
    resp.raw = raw
    return resp


def _norm_headers(headers) -> list:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def _to_bytes(x) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("latin-1")
    return bytes(x)


# --------------------------------------------------------------------------
# the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_in_group(pgid: int) -> list:
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
            # pid (comm) state ppid pgrp ...
            rest = stat[stat.rindex(b")") + 2 :].split()
            if int(rest[2]) == pgid:
                pids.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    return pids


#: every server started in this Python process, so a session hook can make
#: sure none is left running
_LIVE_SERVERS: "set[ApacheServer]" = set()
_LIVE_LOCK = threading.Lock()


_STOPPERS: "list[threading.Thread]" = []


def start_server(module_path, config: str = "", **kw) -> "ApacheServer":
    """Create and start a server; on failure nothing is left running."""
    return started(ApacheServer(module_path, config=config, **kw))


def started(srv: "ApacheServer") -> "ApacheServer":
    """Starts a server its caller made (and put files in); on failure nothing is left running."""
    try:
        srv.start()
    except BaseException:
        srv.stop()
        raise
    return srv


def stop_all_servers(timeout: float = 30):
    """Stop every server still running and wait for background stops."""
    with _LIVE_LOCK:
        servers = list(_LIVE_SERVERS)
    for s in servers:
        s.stop()
    deadline = time.monotonic() + timeout
    for t in list(_STOPPERS):
        t.join(max(0.1, deadline - time.monotonic()))
    _STOPPERS[:] = [t for t in _STOPPERS if t.is_alive()]


class ApacheServer:
    """One Apache httpd instance with its own generated configuration.

    >>> with ApacheServer(rwsgi_module(), config='WSGIScriptAlias /h {apps}/hello.wsgi') as srv:
    ...     assert srv.get('/h').body == b'Hello, World!'
    """

    def __init__(
        self,
        module_path: "str | os.PathLike | None",
        *,
        mpm: str = "event",
        config: str = "",
        name: str = "t",
        load_modules: Sequence[str] = (),
        env: "Mapping[str, str] | None" = None,
        keep_root: bool = False,
    ):
        if mpm not in MPMS:
            raise ValueError(f"unknown MPM {mpm!r}, expected one of {MPMS}")
        self.module_path = str(module_path) if module_path else None
        self.mpm = mpm
        self.site_config = config
        self.name = name
        self.load_modules = tuple(load_modules)
        self.extra_env = dict(env or {})
        self.keep_root = keep_root or os.environ.get("RWSGI_KEEP_ROOT") == "1"
        self.proc: "subprocess.Popen | None" = None
        self.stop_seconds: "float | None" = None
        self.final_error_log: str = ""
        self.pgid: "int | None" = None
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.is_root = os.geteuid() == 0

        self.root = Path(tempfile.mkdtemp(prefix=f"rwsgi-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-"))
        os.chmod(self.root, 0o755)
        self.apps = self.root / "apps"
        self.var = self.root / "var"
        self.conf_path = self.root / "httpd.conf"
        self.error_log_path = self.root / "error.log"
        self.access_log_path = self.root / "access.log"
        self.pid_path = self.root / "run" / "httpd.pid"
        self._setup_root()
        self.write_config()

    # -- layout ------------------------------------------------------------

    def _setup_root(self):
        shutil.copytree(APPS_DIR, self.apps, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for sub in ("htdocs", "run", "var"):
            (self.root / sub).mkdir(exist_ok=True)
        (self.root / "htdocs" / "index.html").write_text("static index\n")
        (self.root / "htdocs" / "static.txt").write_text("static file\n")
        # children may need to read everything; apps record state in var/
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        os.chmod(self.var, 0o1777)
        # run/ (DefaultRuntimeDir: mutexes, the pid file, daemon sockets) stays root's and
        # 0755 as /var/run/apache2 is: rwsgi refuses a socket directory others can write to.

    def substitute(self, text: str) -> str:
        return (
            text.replace("{root}", str(self.root))
            .replace("{apps}", str(self.apps))
            .replace("{var}", str(self.var))
            .replace("{venv}", venv_path())
            .replace("{port}", str(self.port))
        )

    def render_config(self) -> str:
        """The shared server skeleton (`rwsgi apache-config`, also what `rwsgi serve` and the
        benchmark start from), then this harness's tuning and the test's site config."""
        r = str(self.root)
        names = [m for m in self.load_modules if not m.strip().startswith("LoadModule")]
        lines = [m.strip() for m in self.load_modules if m.strip().startswith("LoadModule")]
        cmd = [
            rwsgi_command(), "apache-config", "--comment", "generated by tests/harness.py",
            "--server-root", r, "--runtime-dir", f"{r}/run", "--pid-file", str(self.pid_path),
            "--host", self.host, "--port", str(self.port), "--mpm", self.mpm,
            "--error-log", str(self.error_log_path), "--log-level", "info",
            "--access-log", str(self.access_log_path), "--document-root", f"{r}/htdocs",
            "--load", "alias",
        ]
        for m in names:
            cmd += ["--load", m]
        if self.module_path:
            cmd += ["--wsgi-module", self.module_path]
        skeleton = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        lines += ["ServerAdmin webmaster@localhost"]
        if self.mpm == "prefork":
            lines += [
                "StartServers 2",
                "MinSpareServers 1",
                "MaxSpareServers 4",
                "ServerLimit 8",
                "MaxRequestWorkers 8",
                "MaxConnectionsPerChild 0",
            ]
        else:
            lines += [
                "StartServers 2",
                # room for old-generation children that are still exiting
                # after graceful restarts (MaxRequestWorkers caps the live ones)
                "ServerLimit 16",
                "ThreadLimit 8",
                "ThreadsPerChild 8",
                "MinSpareThreads 8",
                "MaxSpareThreads 16",
                "MaxRequestWorkers 16",
                "MaxConnectionsPerChild 0",
            ]
        lines += [
            "Timeout 20",
            "KeepAlive On",
            "KeepAliveTimeout 5",
            "MaxKeepAliveRequests 100",
            f'<Directory "{r}">',
            "    AllowOverride None",
            "    Require all granted",
            "</Directory>",
            "",
        ]
        site = ["", "# ---- site config ----", self.substitute(self.site_config), ""]
        return skeleton + "\n".join(lines + site)

    def write_config(self, config: "str | None" = None):
        """(Re)write httpd.conf; pass new site config text to change it."""
        if config is not None:
            self.site_config = config
        self.conf_path.write_text(self.render_config())
        os.chmod(self.conf_path, 0o644)

    # -- process control ---------------------------------------------------

    def _env(self) -> dict:
        r = str(self.root)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "APACHE_RUN_DIR": f"{r}/run",
            "APACHE_LOCK_DIR": f"{r}/run",
            "APACHE_LOG_DIR": r,
            "APACHE_PID_FILE": str(self.pid_path),
            "APACHE_RUN_USER": "www-data",
            "APACHE_RUN_GROUP": "www-data",
        }
        for k in ("RUST_BACKTRACE", "RWSGI_LOG"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(self.extra_env)
        return env

    def configtest(self) -> "tuple[bool, str]":
        p = subprocess.run(
            [APACHE_BIN, "-t", "-f", str(self.conf_path)],
            env=self._env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        return p.returncode == 0, p.stdout.decode("utf-8", "replace")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> "int | None":
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 15) -> "ApacheServer":
        if self.running:
            return self
        ok, out = self.configtest()
        if not ok:
            raise ConfigError(out)
        for attempt in range(3):
            log_offset = self._log_size()
            self.proc = subprocess.Popen(
                [APACHE_BIN, "-f", str(self.conf_path), "-DFOREGROUND"],
                env=self._env(),
                cwd=str(self.root),
                stdin=subprocess.DEVNULL,
                stdout=open(self.root / "stdout.log", "ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: pgid == pid
            )
            self.pgid = self.proc.pid
            with _LIVE_LOCK:
                _LIVE_SERVERS.add(self)
            try:
                self._wait_up(timeout, log_offset, up_count=1)
                return self
            except StartError:
                text = self.error_log()[log_offset:] + self._stdout_text()
                self._kill()
                if "Address already in use" in text and attempt < 2:
                    self.port = _free_port()
                    self.write_config()
                    continue
                raise
        raise StartError("unreachable")

    def _stdout_text(self) -> str:
        try:
            return (self.root / "stdout.log").read_text("utf-8", "replace")
        except OSError:
            return ""

    def _log_size(self) -> int:
        try:
            return len(self.error_log())
        except OSError:
            return 0

    def _count_up(self, offset: int = 0) -> int:
        return len(_UP_RE.findall(self.error_log()[offset:]))

    def _wait_up(self, timeout: float, log_offset: int, up_count: int):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(
                    f"apache2 exited with {self.proc.returncode} during start\n"
                    f"--- error.log ---\n{self.error_log()[log_offset:]}\n"
                    f"--- stdout/stderr ---\n{self._stdout_text()}"
                )
            if self._count_up(log_offset) >= up_count and self._port_open():
                return
            time.sleep(0.05)
        raise StartError(
            f"apache2 did not come up within {timeout}s\n"
            f"--- error.log ---\n{self.error_log()[log_offset:]}\n"
            f"--- stdout/stderr ---\n{self._stdout_text()}"
        )

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _signal_and_wait(self, sig: int, timeout: float):
        if not self.running:
            raise ApacheError("server is not running")
        offset = self._log_size()
        os.kill(self.proc.pid, sig)
        self._wait_up(timeout, offset, up_count=1)
        # the new generation's children must be able to serve
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    s.sendall(b"OPTIONS * HTTP/1.0\r\n\r\n")
                    s.settimeout(2)
                    if s.recv(16).startswith(b"HTTP/"):
                        return
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise StartError(f"server did not serve again after signal {sig}: {last}")

    def graceful(self, timeout: float = 15):
        """`apachectl -k graceful` (SIGUSR1 to the parent); waits until it serves again."""
        self._signal_and_wait(signal.SIGUSR1, timeout)

    def restart(self, timeout: float = 30):
        """`apachectl -k restart` (SIGHUP to the parent); waits until it serves again."""
        self._signal_and_wait(signal.SIGHUP, timeout)

    def stop(self, timeout: float = 15, wait: bool = True):
        """Stop the server (SIGTERM to the parent, SIGKILL after `timeout`,
        then SIGKILL to anything left in its process group).

        wait=False does this in a background thread (stop_all_servers() joins
        it): mod_wsgi's children can take ~10 s to exit (Apache escalates to
        SIGKILL), which need not hold up the next test.
        """
        if not wait:
            t = threading.Thread(target=self.stop, args=(timeout, True), daemon=True)
            t.start()
            _STOPPERS.append(t)
            return
        t0 = time.monotonic()
        was_running = self.proc is not None
        self._kill(timeout)
        if was_running:
            self.stop_seconds = time.monotonic() - t0
        # keep the final log text for post-mortem assertions
        if self.error_log_path.exists():
            self.final_error_log = self.error_log()
        if not self.keep_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill(self, timeout: float = 10):
        with _LIVE_LOCK:
            _LIVE_SERVERS.discard(self)
        if self.proc is None:
            return
        proc, pgid = self.proc, self.pgid
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
                proc.wait(5)
        # leftovers of this server's process group (children, daemons)
        if pgid:
            deadline = time.monotonic() + 5
            while True:
                left = _pids_in_group(pgid)
                if not left:
                    break
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        self.proc = None

    def leftover_pids(self) -> list:
        """Processes still in this server's process group (should be [])."""
        return _pids_in_group(self.pgid) if self.pgid else []

    def child_pids(self) -> list:
        if not self.running:
            return []
        return [p for p in _pids_in_group(self.pgid) if p != self.proc.pid]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self._kill()
        except Exception:
            pass

    # -- logs --------------------------------------------------------------

    def error_log(self) -> str:
        try:
            return self.error_log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def access_log(self) -> str:
        try:
            return self.access_log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """Current end of the error log; pass to error_log_since()/wait_for_log()."""
        return self._log_size()

    def error_log_since(self, mark: int) -> str:
        return self.error_log()[mark:]

    def wait_for_log(self, pattern, timeout: float = 5, since: int = 0):
        """Wait until the error log (from offset `since`) contains `pattern`.

        `pattern` is a substring or a compiled regex. Returns the match (the
        substring, or the re.Match); raises AssertionError with the log on
        timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.error_log()[since:]
            if isinstance(pattern, re.Pattern):
                m = pattern.search(text)
                if m:
                    return m
            elif pattern in text:
                return pattern
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in error log within {timeout}s:\n{text[-6000:]}")
            time.sleep(0.05)

    # -- HTTP --------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self, timeout: float = 10) -> socket.socket:
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def build_request(
        self,
        method: str,
        path: str,
        headers=None,
        body=None,
        chunked: bool = False,
        keepalive: bool = False,
        http_version: str = "HTTP/1.1",
    ) -> bytes:
        hdrs = _norm_headers(headers)
        names = {k.lower() for k, _ in hdrs}
        if "host" not in names and http_version == "HTTP/1.1":
            hdrs.insert(0, ("Host", f"{self.host}:{self.port}"))
        if not keepalive and "connection" not in names:
            hdrs.append(("Connection", "close"))
        payload = b""
        if chunked:
            if "transfer-encoding" not in names:
                hdrs.append(("Transfer-Encoding", "chunked"))
            chunks = [body] if isinstance(body, (bytes, str)) else list(body or [])
            for c in chunks:
                c = _to_bytes(c)
                if c:
                    payload += b"%x\r\n%s\r\n" % (len(c), c)
            payload += b"0\r\n\r\n"
        elif body is not None:
            payload = _to_bytes(body)
            if "content-length" not in names:
                hdrs.append(("Content-Length", str(len(payload))))
        head = f"{method} {path} {http_version}\r\n".encode("latin-1")
        for k, v in hdrs:
            head += _to_bytes(k) + b": " + _to_bytes(v) + b"\r\n"
        return head + b"\r\n" + payload

    def request(
        self,
        method: str,
        path: str,
        headers=None,
        body=None,
        chunked: bool = False,
        timeout: float = 10,
        keepalive: bool = False,
        http_version: str = "HTTP/1.1",
    ) -> Response:
        """One request on a fresh connection.

        headers: dict or list of (name, value); Host and (unless keepalive)
        `Connection: close` are added. body: bytes/str; with chunked=True it may
        also be an iterable of chunks and is sent with Transfer-Encoding:
        chunked. The returned Response has .complete/.timed_out/.closed set
        when the body framing was not satisfied within `timeout` seconds.
        """
        data = self.build_request(method, path, headers, body, chunked, keepalive, http_version)
        with self.connect(timeout) as s:
            s.sendall(data)
            reader = _Reader(s, time.monotonic() + timeout)
            resp = _read_response(reader, method)
            if not keepalive and not resp.timed_out and resp.complete:
                # drain to EOF so .raw is the full exchange (bounded)
                reader.deadline = min(reader.deadline, time.monotonic() + 2)
                try:
                    resp.trailing = reader.read_all()
                except (socket.timeout, TimeoutError):
                    resp.trailing = reader.buf
                resp.closed = reader.eof
            resp.raw = bytes(reader.raw)
            return resp

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw) -> Response:
        return self.request("HEAD", path, **kw)

    def post(self, path: str, body=b"", **kw) -> Response:
        return self.request("POST", path, body=body, **kw)

    def raw_request(self, data: bytes, timeout: float = 5, shutdown_write: bool = False) -> bytes:
        """Send arbitrary bytes; return everything read until EOF or timeout."""
        with self.connect(timeout) as s:
            s.sendall(data)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
            out = bytearray()
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                s.settimeout(remaining)
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, TimeoutError):
                    break
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return bytes(out)

    def keepalive(self, timeout: float = 10) -> "KeepAliveConnection":
        """A persistent connection: all its requests reach the same Apache
        child process (useful for per-process state such as interpreters).

        with srv.keepalive() as conn:
            r1 = conn.get("/a"); r2 = conn.post("/b", b"x")
        """
        return KeepAliveConnection(self, timeout)

    def requests_keepalive(self, reqs: Iterable, timeout: float = 10) -> "list[Response]":
        """Several (method, path[, kwargs]) requests on one keep-alive connection."""
        out = []
        with self.keepalive(timeout) as conn:
            for item in reqs:
                kw = item[2] if len(item) > 2 else {}
                out.append(conn.request(item[0], item[1], **kw))
        return out

    def __repr__(self):
        return f"<ApacheServer {self.name} mpm={self.mpm} port={self.port} root={self.root}>"


class KeepAliveConnection:
    """Sequential requests over one HTTP/1.1 keep-alive connection."""

    def __init__(self, server: ApacheServer, timeout: float = 10):
        self.server = server
        self.timeout = timeout
        self.sock = server.connect(timeout)
        self.reader = _Reader(self.sock, time.monotonic() + timeout)

    def request(self, method: str, path: str, headers=None, body=None, chunked: bool = False,
                timeout: "float | None" = None) -> Response:
        self.sock.sendall(self.server.build_request(method, path, headers, body, chunked, keepalive=True))
        self.reader.deadline = time.monotonic() + (timeout or self.timeout)
        self.reader.raw = bytearray()
        resp = _read_response(self.reader, method)
        resp.raw = bytes(self.reader.raw)
        return resp

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body=b"", **kw) -> Response:
        return self.request("POST", path, body=body, **kw)

    def server_closed(self, timeout: float = 3) -> bool:
        """True when the server ends the connection (EOF, nothing more sent) within `timeout`
        of the last response; False when it stays open."""
        if self.reader.buf or self.reader.eof:
            return self.reader.eof and not self.reader.buf
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
