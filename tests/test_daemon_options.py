"""Daemon mode: the WSGIDaemonProcess options beyond the basics, each against a real Apache —
eviction-timeout, startup-timeout, interrupt-timeout, response-socket-timeout,
header-buffer-size, display-name, supplementary-groups, python-path, WSGIImportScript
preloading in a daemon group, and the default application group of a group with one mount."""
import grp
import json
import os
import signal
import socket
import threading
import time

import pytest

from harness import start_server

pytestmark = pytest.mark.rwsgi_specific(reason="rwsgi daemon-mode behaviour and process model")

CONFIG = """
Timeout 30
WSGIDaemonProcess evict threads=2 graceful-timeout=1 eviction-timeout=8
WSGIDaemonProcess noevict threads=2 graceful-timeout=1
WSGIDaemonProcess startup threads=1 startup-timeout=2
WSGIDaemonProcess interrupt threads=2 request-timeout=1 interrupt-timeout=3
WSGIDaemonProcess hdr threads=1 header-buffer-size=8192
WSGIDaemonProcess rst threads=1 response-socket-timeout=1
WSGIDaemonProcess named threads=1 display-name=%{GROUP}
WSGIDaemonProcess sup threads=1 user=nobody group=nogroup supplementary-groups=adm,www-data \
    python-path={apps}/extra_path
WSGIDaemonProcess pre threads=1
WSGIImportScript {apps}/preload.py process-group=pre application-group=%{GLOBAL}
WSGIDaemonProcess envgrp threads=1 home={apps}/extra_path python-home={venv} python-eggs={var} \
    lang=C.UTF-8 locale=C.UTF-8 umask=0027 stack-size=1048576 memory-limit=3000000000 \
    virtual-memory-limit=6000000000 cpu-priority=5 cpu-time-limit=3000 listen-backlog=17 \
    send-buffer-size=98304 receive-buffer-size=98304
WSGIDaemonProcess recycle threads=1 restart-interval=2
WSGIDaemonProcess idle threads=1 inactivity-timeout=2
WSGIDaemonProcess sock threads=1 socket-timeout=1
WSGIDaemonProcess reaper threads=1 graceful-timeout=1 shutdown-timeout=1
WSGIDaemonProcess spoof threads=1 connect-timeout=1
WSGIDaemonProcess sole threads=1
WSGIDaemonProcess multi threads=1
WSGIScriptAlias /evict {apps}/daemon_probe.wsgi process-group=evict application-group=%{GLOBAL}
WSGIScriptAlias /noevict {apps}/daemon_probe.wsgi process-group=noevict application-group=%{GLOBAL}
WSGIScriptAlias /startup {apps}/startup_once.wsgi process-group=startup application-group=%{GLOBAL}
WSGIScriptAlias /interrupt {apps}/daemon_probe.wsgi process-group=interrupt application-group=%{GLOBAL}
WSGIScriptAlias /hdr {apps}/edge.wsgi process-group=hdr application-group=%{GLOBAL}
WSGIScriptAlias /rst {apps}/daemon_probe.wsgi process-group=rst application-group=%{GLOBAL}
WSGIScriptAlias /named {apps}/daemon_probe.wsgi process-group=named application-group=%{GLOBAL}
WSGIScriptAlias /sup {apps}/daemon_probe.wsgi process-group=sup application-group=%{GLOBAL}
WSGIScriptAlias /pre {apps}/daemon_probe.wsgi process-group=pre application-group=%{GLOBAL}
WSGIScriptAlias /envgrp {apps}/daemon_probe.wsgi process-group=envgrp application-group=%{GLOBAL}
WSGIScriptAlias /recycle {apps}/daemon_probe.wsgi process-group=recycle application-group=%{GLOBAL}
WSGIScriptAlias /idle {apps}/daemon_probe.wsgi process-group=idle application-group=%{GLOBAL}
WSGIScriptAlias /sock {apps}/daemon_probe.wsgi process-group=sock application-group=%{GLOBAL}
WSGIScriptAlias /reaper {apps}/daemon_probe.wsgi process-group=reaper application-group=%{GLOBAL}
WSGIScriptAlias /spoof {apps}/daemon_probe.wsgi process-group=spoof application-group=%{GLOBAL}
WSGIScriptAlias /sole {apps}/daemon_probe.wsgi process-group=sole
WSGIScriptAlias /m1 {apps}/daemon_probe.wsgi process-group=multi
WSGIScriptAlias /m2 {apps}/daemon_probe.wsgi process-group=multi
"""


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, name="daemon-options")
    yield s
    s.stop(wait=False)


def _probe(srv, path, **kw):
    r = srv.get(path, **kw)
    assert r.status == 200, (path, r.status, r.body[:300], srv.error_log()[-2000:])
    return r.json()


def _in_background(srv, path, timeout=30):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", srv.get(path, timeout=timeout)))
    t.start()
    return t, result


def _wait_for_new_pid(srv, path, old, limit=15):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        r = srv.get(path)
        if r.status == 200 and r.json()["pid"] != old:
            return r.json()["pid"]
        time.sleep(0.1)
    raise AssertionError("no new daemon process for %s within %ss" % (path, limit))


def test_sigusr1_eviction_waits_for_eviction_timeout(srv):
    pid = _probe(srv, "/evict")["pid"]
    t, result = _in_background(srv, "/evict?t=sleep&s=3")
    time.sleep(0.5)
    os.kill(pid, signal.SIGUSR1)
    t.join(30)
    # eviction-timeout=8 outlasts the 3 s request although graceful-timeout is 1
    assert result["r"].status == 200, srv.error_log()[-2000:]
    assert _wait_for_new_pid(srv, "/evict", pid) != pid


def test_sigusr1_without_eviction_timeout_uses_graceful_timeout(srv):
    pid = _probe(srv, "/noevict")["pid"]
    t, result = _in_background(srv, "/noevict?t=sleep&s=4")
    time.sleep(0.5)
    os.kill(pid, signal.SIGUSR1)
    t.join(30)
    assert result["r"].status == 502  # cut off after graceful-timeout=1
    _wait_for_new_pid(srv, "/noevict", pid)


def test_startup_timeout_restarts_a_process_whose_script_never_loads(srv):
    flag = srv.apps / "startup_down.flag"
    flag.write_text("down")
    mark = srv.log_mark()
    assert srv.get("/startup").status == 500
    flag.unlink()
    # this process can never load the script again (like Django after a failed setup) ...
    assert srv.get("/startup").status == 500
    # ... so startup-timeout=2 replaces it, and the new one serves
    t0 = time.monotonic()
    while srv.get("/startup").status != 200:
        assert time.monotonic() - t0 < 15, srv.error_log_since(mark)[-2000:]
        time.sleep(0.2)
    assert "startup-timeout=2s" in srv.error_log_since(mark)


def test_interrupt_timeout_interrupts_the_request_and_keeps_the_process(srv):
    pid = _probe(srv, "/interrupt")["pid"]
    mark = srv.log_mark()
    t0 = time.monotonic()
    r = srv.get("/interrupt?t=pysleep&s=20", timeout=30)
    assert r.status == 504
    assert time.monotonic() - t0 < 4
    log = srv.error_log_since(mark)
    assert "RequestTimeout" in log and "interrupting it" in log
    # the overdue request's stack comes with it
    assert "Python stack of request GET /interrupt?t=pysleep&s=20" in log, log[-3000:]
    assert "time.sleep(0.05)" in log
    assert _probe(srv, "/interrupt")["pid"] == pid  # the process lives on


def test_interrupt_timeout_restarts_when_the_thread_cannot_be_interrupted(srv):
    pid = _probe(srv, "/interrupt")["pid"]
    t0 = time.monotonic()
    r = srv.get("/interrupt?t=csleep&s=20", timeout=30)
    # interrupted at ~1 s, still stuck in C 3 s later: 504 and a new process
    assert r.status == 504
    assert 3 < time.monotonic() - t0 < 10
    _wait_for_new_pid(srv, "/interrupt", pid)


def test_header_buffer_size_limits_response_header_lines(srv):
    assert srv.get("/hdr?t=bighdr&n=8000").status == 200
    mark = srv.log_mark()
    r = srv.get("/hdr?t=bighdr&n=9000")
    assert r.status == 500
    assert "Response header line too long" in srv.error_log_since(mark)
    assert srv.get("/hdr?t=bighdr&n=100").status == 200


def test_response_socket_timeout_frees_the_daemon_from_a_stalled_client(srv):
    _probe(srv, "/rst")
    # a client that asks for 64 MiB and never reads: Apache's writes stall
    s = socket.create_connection((srv.host, srv.port))
    s.sendall(b"GET /rst?t=bigresp_noread&n=67108864 HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        # the group's only thread is free again after response-socket-timeout=1, not Timeout=30
        r = srv.get("/rst", timeout=20)
        assert r.status == 200
        assert time.monotonic() - t0 < 8
    finally:
        s.close()


def test_display_name_sets_process_name_and_command_line(srv):
    pid = _probe(srv, "/named")["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        cmdline = f.read().rstrip(b"\0").decode()
    with open("/proc/%d/comm" % pid) as f:
        comm = f.read().strip()
    assert cmdline.startswith("(wsgi:named)") or "(wsgi:named)".startswith(cmdline)
    assert comm == "(wsgi:named)"[:15]


def test_supplementary_groups_and_python_path(srv):
    d = _probe(srv, "/sup?t=id")
    nogroup, adm, www = (grp.getgrnam(n).gr_gid for n in ("nogroup", "adm", "www-data"))
    assert d["gid"] == nogroup and d["egid"] == nogroup
    assert adm in d["groups"] and www in d["groups"]
    e = _probe(srv, "/sup?t=extras")
    assert e["extra"].endswith("extra_path/rwsgi_extra_mod.py"), e


def test_import_script_preloads_in_the_daemon_group(srv):
    e = _probe(srv, "/pre?t=extras")
    # preload.py ran in this very process before its first request
    assert e["preloaded_pid"] == e["pid"]
    assert _probe(srv, "/evict?t=extras")["preloaded_pid"] is None


def test_default_application_group_of_a_group_with_one_mount(srv):
    # the only mount of group 'sole' runs in the main interpreter ...
    assert _probe(srv, "/sole")["application_group"] == ""
    # ... a group with two mounts gives each its own sub-interpreter, as %{RESOURCE}
    a, b = _probe(srv, "/m1")["application_group"], _probe(srv, "/m2")["application_group"]
    assert a and b and a != b and a.endswith("|/m1") and b.endswith("|/m2")


def test_process_environment_and_limits(srv):
    e = _probe(srv, "/envgrp?t=env")
    assert e["cwd"] == str(srv.apps / "extra_path")  # home=
    assert e["prefix"] == os.environ.get("RWSGI_VENV", "/var/tmp/rwsgi-venv")  # python-home=
    assert e["eggs"] == str(srv.var)  # python-eggs=
    assert e["lang"] == "C.UTF-8" and e["lc_all"] == "C.UTF-8"  # lang=, locale=
    assert e["umask"] == 0o027
    assert e["priority"] == 5  # cpu-priority=
    assert e["rlimit_data"] == [3000000000, 3000000000]  # memory-limit=
    assert e["rlimit_as"] == [6000000000, 6000000000]  # virtual-memory-limit=
    assert e["rlimit_cpu"][0] == 3000  # cpu-time-limit=
    assert e["stack_size"] == 1048576  # stack-size= (request threads)
    # send/receive-buffer-size= on the daemon's end of each connection (Linux doubles them)
    assert [2 * 98304, 2 * 98304] in e["socket_buffers"], e["socket_buffers"]


def test_listen_backlog(srv):
    import subprocess
    _probe(srv, "/envgrp")
    parent = int(srv.pid_path.read_text().strip())
    out = subprocess.run(["ss", "-xlH"], capture_output=True, text=True).stdout
    lines = [l.split() for l in out.splitlines() if "rwsgi.%d." % parent in l]
    # Send-Q of a listening socket is its backlog; exactly one group asked for 17
    assert sorted(int(l[3]) for l in lines).count(17) == 1, out


def test_restart_interval_recycles(srv):
    pid = _probe(srv, "/recycle")["pid"]
    _wait_for_new_pid(srv, "/recycle", pid, limit=10)


def test_inactivity_timeout_recycles_an_idle_process(srv):
    pid = _probe(srv, "/idle")["pid"]
    time.sleep(3)
    _wait_for_new_pid(srv, "/idle", pid, limit=10)


def test_socket_timeout_gives_504(srv):
    t0 = time.monotonic()
    r = srv.get("/sock?t=sleep&s=4", timeout=20)
    assert r.status == 504 and time.monotonic() - t0 < 3.5


def test_shutdown_timeout_ends_a_process_whose_atexit_hangs(srv):
    pid = _probe(srv, "/reaper?t=hang_at_exit")["pid"]
    mark = srv.log_mark()
    t0 = time.monotonic()
    os.kill(pid, signal.SIGUSR1)
    # graceful-timeout=1 + shutdown-timeout=1, not the handler's hour
    _wait_for_new_pid(srv, "/reaper", pid, limit=10)
    assert time.monotonic() - t0 < 8
    assert "shutdown-timeout=1s" in srv.error_log_since(mark)


FAKE_DAEMON = r"""
import os, socket, sys
path = sys.argv[1]
os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path)
os.chmod(path, 0o777)
os.setuid(65534)          # listen() as another user: that is what SO_PEERCRED reports
s.listen(5)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.recv(70000)
    # a well-formed HELLO_ACK ("rings mapped"), to make the impostor convincing
    c.send(bytes([0x52, 0x57, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]))
"""


def test_apache_refuses_a_socket_not_served_by_the_groups_supervisor(srv):
    import hashlib
    import subprocess
    import sys
    parent = int(srv.pid_path.read_text().strip())
    h = hashlib.md5(b"spoof").hexdigest()[:12]
    path = "%s/run/rwsgi.%d.%s.sock" % (srv.root, parent, h)
    assert os.path.exists(path)
    fake = subprocess.Popen([sys.executable, "-c", FAKE_DAEMON, path], stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout.readline().strip() == "ready"
        mark = srv.log_mark()
        r = srv.get("/spoof", timeout=20)
        assert r.status == 503
        assert "not served by this server's daemon processes (peer uid Some(65534)" in srv.error_log_since(mark)
    finally:
        fake.kill()
        fake.wait()
