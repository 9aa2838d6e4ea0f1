"""Daemon mode on a stock Debian layout: no WSGISocketPrefix, so the group sockets go to
Apache's DefaultRuntimeDir, which Debian's apache2.conf sets to ${APACHE_RUN_DIR} =
/var/run/apache2 (root-owned, 0755; apache2ctl creates it). Requests must keep working across
graceful restarts and the log rotation Debian's logrotate does (rename the logs, then
`apache2ctl graceful`) — mod_wsgi's "Unable to connect to WSGI daemon process" at logrotate
time (mod_wsgi#929) — and a stop must leave no socket behind."""
import glob
import os
import threading
import time

import pytest

from harness import start_server

RUN_DIR = "/var/run/apache2"

CONFIG = """
DefaultRuntimeDir {run_dir}
WSGIDaemonProcess site processes=2 threads=4
WSGIProcessGroup site
WSGIScriptAlias / {{apps}}/daemon_probe.wsgi
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as Debian's Apache")


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)  # what apache2ctl does
    s = start_server(rwsgi_path, CONFIG.format(run_dir=RUN_DIR), name="debian-layout")
    yield s
    s.stop()


def _sockets(srv):
    parent = int(srv.pid_path.read_text().strip())
    return sorted(glob.glob(os.path.join(RUN_DIR, "rwsgi.%d.*.sock" % parent)))


def test_socket_lands_in_the_debian_runtime_dir(srv):
    r = srv.get("/")
    assert r.status == 200 and r.json()["process_group"] == "site", srv.error_log()[-2000:]
    socks = _sockets(srv)
    assert len(socks) == 1
    st = os.stat(socks[0])
    assert oct(st.st_mode & 0o777) == "0o600"


def test_requests_survive_logrotate_and_graceful_restarts(srv):
    sock_before = _sockets(srv)
    failures = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            r = srv.get("/?t=id", timeout=20)
            if r.status != 200:
                failures.append((r.status, r.body[:200]))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(3):
            time.sleep(0.5)
            # logrotate: move the logs away, then reload Apache
            os.rename(srv.error_log_path, "%s.%d" % (srv.error_log_path, n + 1))
            os.rename(srv.access_log_path, "%s.%d" % (srv.access_log_path, n + 1))
            srv.graceful()
            assert srv.get("/").status == 200
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    logs = "".join(p.read_text(errors="replace") for p in sorted(srv.root.glob("error.log*")))
    assert failures == [], "\n".join(l for l in logs.splitlines() if "wsgi" in l)[-4000:]
    assert _sockets(srv) == sock_before  # same socket across reloads
    assert "Unable to connect" not in srv.error_log()


def test_stop_leaves_no_socket(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG.format(run_dir=RUN_DIR), name="debian-stop")
    try:
        assert s.get("/").status == 200
        socks = _sockets(s)
        assert socks
    finally:
        s.stop()
    assert [p for p in socks if os.path.exists(p)] == []
