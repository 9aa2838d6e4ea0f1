"""The run's environment: `Ctx` (venv, the rwsgi module and command, the temp directory), the
world-readable tree Apache serves from (`prepare_www`: Apache runs as www-data, and copying the
module at start keeps a rebuild during the run from mixing two builds), and the machine
description that heads the report."""

import datetime
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import APACHE, BENCH, MODWSGI_SO, REPO, WRK


class Ctx:
    """What the servers of one run share; `www` and `rwsgi_so` are set by prepare_www."""

    def __init__(self, venv):
        self.venv = venv
        self.rwsgi_src = Path(os.environ.get("RWSGI_MODULE")
                              or REPO / "target/release/mod_rwsgi.so")
        # the same module built without the status counters (bench/build-nostatus)
        self.nostatus_src = REPO / "target/nostatus/release/mod_rwsgi.so"
        # writes every server's configuration skeleton (the same writer as the tests' and serve's)
        self.rwsgi_cmd = Path(os.environ.get("RWSGI_COMMAND") or REPO / "target/release/rwsgi")
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
        self.base = self.www = self.rwsgi_so = None

    def make_base(self):
        """The run's temp directory (every server's ServerRoot is inside it)."""
        self.base = Path(tempfile.mkdtemp(prefix="rwsgi-bench-"))
        os.chmod(self.base, 0o755)


def load_bench_app():
    spec = importlib.util.spec_from_file_location("bench_app_local", BENCH / "apps" / "bench_app.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def prepare_www(ctx, app):
    """World-readable copies of the apps, the static files and the rwsgi module."""
    www = ctx.base / "www"
    for d in ("htdocs", "apps", "apps/templates", "apps/data", "modules"):
        (www / d).mkdir(parents=True, exist_ok=True)
    hello, big, filedata = app.HELLO, app.payload(app.BIG_SIZE), app.payload(app.FILE_SIZE)
    files = {
        "htdocs/hello.txt": hello, "htdocs/big.bin": big, "htdocs/file.bin": filedata,
        "apps/data/file.bin": filedata,
    }
    for rel, data in files.items():
        (www / rel).write_bytes(data)
    for rel in ("bench_app.py", "flask_app.py", "django_app.py", "catalogue.py",
                "templates/page.html", "templates/page_django.html"):
        shutil.copyfile(BENCH / "apps" / rel, www / "apps" / rel)
    if ctx.rwsgi_src.exists():
        shutil.copyfile(ctx.rwsgi_src, www / "modules" / "mod_rwsgi.so")
        # the program daemon processes run: found next to the module
        daemon = ctx.rwsgi_src.parent / "rwsgi-daemon"
        if daemon.exists():
            shutil.copyfile(daemon, www / "modules" / "rwsgi-daemon")
    if ctx.nostatus_src.exists():
        (www / "modules-nostatus").mkdir(exist_ok=True)
        # its own daemon program when one was put beside it (an A/B of two builds), else ours
        daemon = ctx.nostatus_src.parent / "rwsgi-daemon"
        if not daemon.exists():
            daemon = ctx.rwsgi_src.parent / "rwsgi-daemon"
        for src, name in ((ctx.nostatus_src, "mod_rwsgi.so"), (daemon, "rwsgi-daemon")):
            if src.exists():
                shutil.copyfile(src, www / "modules-nostatus" / name)
    for root, dirs, fnames in os.walk(ctx.base):
        os.chmod(root, 0o755)
        for fn in fnames:
            os.chmod(os.path.join(root, fn), 0o755 if fn == "rwsgi-daemon" else 0o644)
    ctx.www = www
    ctx.rwsgi_so = www / "modules" / "mod_rwsgi.so"
    ctx.nostatus_so = www / "modules-nostatus" / "mod_rwsgi.so"
    return {"hello": hello, "big": big, "file": filedata, "sleep": hello}


def sh(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"? ({e})"


def machine_info(ctx):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    so = ctx.rwsgi_src
    so_desc = "missing"
    if so.exists():
        st = so.stat()
        digest = hashlib.sha256(so.read_bytes()).hexdigest()[:12]
        so_desc = (f"{so} ({st.st_size:,} bytes, built "
                   f"{datetime.datetime.fromtimestamp(st.st_mtime).strftime('%Y-%m-%d %H:%M:%S')}, "
                   f"sha256 {digest})")
    head = sh(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"])
    dirty = sh(["git", "-C", str(REPO), "status", "--porcelain", "--", "crates",
                "Cargo.toml", "Cargo.lock"])
    py_venv = sh([f"{ctx.venv}/bin/python", "-c",
                  "import sys, importlib.metadata as m; print(sys.version.split()[0], "
                  "'Flask', m.version('flask'), 'Jinja2', m.version('jinja2'))"])
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "mem_gib": round(mem, 1),
        "kernel": os.uname().release,
        "apache": sh([APACHE, "-v"]).splitlines()[0].split(":", 1)[-1].strip(),
        "python": sys.version.split()[0] + " (/usr/bin/python3.11)",
        "venv": f"{ctx.venv} (Python {py_venv})",
        "mod_wsgi": f"{MODWSGI_SO} (Debian libapache2-mod-wsgi-py3 "
                    + sh(["dpkg-query", "-W", "-f", "${Version}", "libapache2-mod-wsgi-py3"]) + ")",
        "rwsgi": so_desc,
        "git": head + (" + uncommitted changes in src/" if dirty else ""),
        "wrk": sh([WRK, "-v"]).splitlines()[0] if sh([WRK, "-v"]) else "?",
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }
