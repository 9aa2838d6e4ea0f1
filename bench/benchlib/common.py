"""The benchmark's fixed facts, shared by every module: where Apache, mod_wsgi and wrk are, the
one Apache tuning every variant gets, the variants and workloads, and the few helpers every
phase reports through (`log`, `Failure`). LIVE_SERVERS lives here so that the entry point's
cleanup and `Server` see one and the same list."""

import http.client
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent  # bench/: apps/, wrk/, results/
REPO = BENCH.parent
APACHE = "/usr/sbin/apache2"
MODDIR = Path("/usr/lib/apache2/modules")
MODWSGI_SO = MODDIR / "mod_wsgi.so"
DEFAULT_VENV = "/var/tmp/rwsgi-venv"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CONNECTIONS = 64
WRK_THREADS = 2
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL of the process group
STOP_SETTLE = 1.2  # idle seconds between the last load run and SIGTERM
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The one fixed mpm_event configuration (order matters: limits before the counts).
MPM = [
    ("ServerLimit", 2),
    ("ThreadLimit", 64),
    ("StartServers", 2),
    ("ThreadsPerChild", 64),
    ("MaxRequestWorkers", 128),
    ("MinSpareThreads", 64),
    ("MaxSpareThreads", 192),
    ("MaxConnectionsPerChild", 0),
]
CORE = [("KeepAlive", "On"), ("MaxKeepAliveRequests", 0), ("KeepAliveTimeout", 15),
        ("EnableSendfile", "On")]
CONFIG_TEXT = (
    "mpm_event: StartServers 2, ServerLimit 2, ThreadsPerChild 64, ThreadLimit 64, "
    "MaxRequestWorkers 128, MinSpareThreads 64, MaxSpareThreads 192, MaxConnectionsPerChild 0; "
    "KeepAlive On, MaxKeepAliveRequests 0, KeepAliveTimeout 15, EnableSendfile On; "
    "no access log, LogLevel warn; modules: mpm_event + authz_core + mime + the variant's module; "
    "WSGI variants: WSGIApplicationGroup %{GLOBAL}, WSGIPythonHome <venv>; daemon: "
    "WSGIDaemonProcess bench processes=2 threads=15 display-name=%{GROUP}, WSGIProcessGroup bench, WSGIRestrictEmbedded On"
)

# name -> properties. `ref` = the variant an rwsgi figure is divided by (same mode).
VARIANTS = {
    "static": {"kind": "static"},
    "modwsgi-embedded": {"kind": "wsgi", "module": "modwsgi", "mode": "embedded"},
    "modwsgi-daemon": {"kind": "wsgi", "module": "modwsgi", "mode": "daemon"},
    "rwsgi-embedded": {"kind": "wsgi", "module": "rwsgi", "mode": "embedded",
                       "ref": "modwsgi-embedded"},
    "rwsgi-daemon": {"kind": "wsgi", "module": "rwsgi", "mode": "daemon",
                     "ref": "modwsgi-daemon", "may_skip": True},
    # Opt-in: rwsgi built without the status counters (bench/build-nostatus), divided by the
    # normal build: what counting every request for the status page costs.
    "rwsgi-embedded-nostatus": {"kind": "wsgi", "module": "rwsgi-nostatus", "mode": "embedded",
                                "ref": "rwsgi-embedded", "opt_in": True},
    "rwsgi-daemon-nostatus": {"kind": "wsgi", "module": "rwsgi-nostatus", "mode": "daemon",
                              "ref": "rwsgi-daemon", "opt_in": True},
}
DEFAULT_VARIANTS = [v for v, p in VARIANTS.items() if not p.get("opt_in")]

# name -> url path per server kind; `script` = wrk lua script.
WORKLOADS = {
    "hello": {"wsgi": "/hello", "static": "/hello.txt"},
    "big": {"wsgi": "/big", "static": "/big.bin"},
    "file": {"wsgi": "/file", "static": "/file.bin"},
    "echo": {"wsgi": "/echo", "script": "echo.lua"},
    "echo-read": {"wsgi": "/echo/read", "script": "echo.lua"},
    "echo-8k": {"wsgi": "/echo/8k", "script": "echo.lua"},
    "echo-64k": {"wsgi": "/echo/64k", "script": "echo.lua"},
    "echo-256k": {"wsgi": "/echo/256k", "script": "echo.lua"},
    "echo-1m": {"wsgi": "/echo/1m", "script": "echo.lua"},
    "echo-lines": {"wsgi": "/echo/lines", "script": "lines.lua"},
    "echo-iter": {"wsgi": "/echo/iter", "script": "lines.lua"},
    "upload-werkzeug": {"wsgi": "/upload/werkzeug", "script": "upload.lua"},
    "upload-django": {"wsgi": "/upload/django", "script": "upload.lua"},
    "sleep": {"wsgi": "/sleep"},
    "flask": {"wsgi": "/flask/"},
    "django": {"wsgi": "/django/"},
}
WORKLOAD_TEXT = {
    "hello": "13-byte body",
    "big": "1 MiB body as one bytes object",
    "file": "64 KiB file via wsgi.file_wrapper",
    "echo": "POST 1 MiB, echoed back",
    "echo-read": "POST 1 MiB, read with wsgi.input.read(), echoed",
    "echo-8k": "POST 1 MiB, read in 8 KiB pieces, echoed",
    "echo-64k": "POST 1 MiB, read in 64 KiB pieces, echoed",
    "echo-256k": "POST 1 MiB, read in 256 KiB pieces, echoed",
    "echo-1m": "POST 1 MiB, read in 1 MiB pieces, echoed",
    "echo-lines": "POST 1 MiB of 64-byte lines, readline() loop, echoed",
    "echo-iter": "POST 1 MiB of 64-byte lines, iterated, echoed",
    "upload-werkzeug": "multipart POST, 1 MiB file, parsed by werkzeug",
    "upload-django": "multipart POST, 1 MiB file, parsed by Django's request.FILES",
    "sleep": "time.sleep(0.01) then 13 bytes",
    "flask": "Flask view + Jinja template",
    "django": "Django view + template, startproject's middleware",
}

LIVE_SERVERS = []  # every started Server; stop_live_servers() stops those left at the end


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# What a misbehaving server can make the harness raise: a failure of that variant, not a crash.
SERVER_ERRORS = (Failure, OSError, http.client.HTTPException, subprocess.SubprocessError)


def describe(e):
    return str(e) if isinstance(e, Failure) else f"{type(e).__name__}: {e}"
