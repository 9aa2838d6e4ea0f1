"""Trust boundaries (the "Security" section of the README): what application code can and
cannot reach, in embedded and daemon mode.

1. Request-bound objects kept past their request (wsgi.errors in a logging handler, a
   background thread, a kept wsgi.input / start_response / write) raise mod_wsgi's
   RuntimeError; they never reach the ended request (embedded: a segfault of the Apache
   child) nor its daemon connection (daemon: a hang of the next request).
"""
import os
import re
import signal
import socket
import time

import pytest

import harness
from harness import start_server

STALE = """
WSGIDaemonProcess stale threads=4
WSGIScriptAlias /emb {apps}/stale.wsgi
WSGIScriptAlias /dmn {apps}/stale.wsgi process-group=stale
"""


@pytest.fixture(scope="module")
def stale_srv(rwsgi_path):
    s = start_server(rwsgi_path, STALE, name="stale")
    yield s
    s.stop()


EXPIRED_REQUEST = "RuntimeError: request object has expired"
EXPIRED_LOG = "RuntimeError: log object has expired"


@pytest.mark.parametrize("mount", ["/emb", "/dmn"])
def test_kept_request_objects_raise_and_never_crash(stale_srv, mount):
    srv = stale_srv
    mark = srv.log_mark()
    # One persistent connection: in embedded mode the same Apache child serves every request,
    # so the background thread and the kept objects live in the process under test.
    with srv.keepalive() as c:
        assert c.get(mount + "/keep").body == b"kept"
        deadline = time.monotonic() + 5
        seen = None
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            r = c.get(mount + "/use")
            # daemon mode: a thread writing to a kept wsgi.errors once made the next request
            # on that connection wait for Apache's Timeout
            assert time.monotonic() - t0 < 3, "request after stale writes was slow"
            assert r.status == 200, (r.status, r.body[:300], srv.error_log_since(mark)[-3000:])
            seen = r.json()
            if seen["thread"]:
                break
            time.sleep(0.05)
    assert seen["errors"] == EXPIRED_LOG, seen
    assert seen["errors_flush"] == EXPIRED_LOG, seen
    assert seen["input"] == EXPIRED_REQUEST, seen
    assert seen["readline"] == EXPIRED_REQUEST, seen
    assert seen["start_response"] == EXPIRED_REQUEST, seen
    assert seen["write"] == EXPIRED_REQUEST, seen
    # the background thread: every write after the first request ended raised (the first
    # writes may still have landed while that request was running)
    assert EXPIRED_LOG in seen["thread"], seen
    assert set(seen["thread"]) <= {"ok", EXPIRED_LOG}, seen
    # more requests on fresh connections while the thread keeps writing
    for _ in range(10):
        assert srv.get(mount + "/plain").body == b"plain"
    log = srv.error_log_since(mark)
    assert "exit signal" not in log, log[-3000:]
    assert "Segmentation fault" not in log, log[-3000:]


# --------------------------------------------------------------------------
# 6. The Apache side trusts nothing a daemon sends.

HOSTILE = """
WSGIDaemonProcess hostile processes=1 threads=1
WSGIDaemonProcess healthy threads=2
WSGIScriptAlias /hostile {apps}/hostile_frames.wsgi process-group=hostile application-group=%{GLOBAL}
WSGIScriptAlias /deflated {apps}/hostile_frames.wsgi process-group=hostile application-group=%{GLOBAL}
WSGIScriptAlias /healthy {apps}/hello.wsgi process-group=healthy
<Location /deflated>
    SetOutputFilter DEFLATE
</Location>
"""


@pytest.fixture(scope="module")
def hostile_srv(rwsgi_path):
    s = start_server(rwsgi_path, HOSTILE, name="hostile", load_modules=["deflate"])
    yield s
    s.stop()


def apache_children(srv):
    """The Apache children (not the daemon processes, which share the process group)."""
    out = []
    for pid in srv.child_pids():
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if comm == "apache2" and ppid == srv.pid:
            out.append(pid)
    return sorted(out)


def hostile_daemons(srv):
    """The pids of group 'hostile''s daemon processes."""
    out = set()
    for pid in srv.child_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"(wsgi:hostile)" in f.read():
                    out.add(pid)
        except OSError:
            pass
    return out


def _until_replaced(srv, pids):
    assert pids, "no daemon process of group 'hostile' found"
    """Each case's daemon process exits right after it answers: the next case waits until it
    is gone, so that its request meets a fresh process (the Apache child drops a connection
    whose process has exited; a request sent while it is still exiting would get a 502)."""
    deadline = time.monotonic() + 10
    while pids & hostile_daemons(srv) and time.monotonic() < deadline:
        time.sleep(0.05)


def _hostile(srv, case, path="/hostile", may_close=False, **kw):
    """`may_close`: the connection may close before any response (None is returned for it)."""
    mark = srv.log_mark()
    children = apache_children(srv)
    daemons = hostile_daemons(srv)
    try:
        r = srv.get(path + "?" + case, timeout=15, **kw)
    except ConnectionError:
        if not may_close:
            raise
        r = None
    daemons |= hostile_daemons(srv)
    # the Apache children live (none died and was replaced) and serve the next request
    assert srv.get("/healthy").status == 200
    assert apache_children(srv) == children
    log = srv.error_log_since(mark)
    assert "exit signal" not in log, log[-3000:]
    _until_replaced(srv, daemons)
    return r, log


@pytest.mark.rwsgi_specific("mod_wsgi relays framing headers from its daemons")
def test_hop_by_hop_headers_from_a_daemon_are_dropped(hostile_srv):
    r, log = _hostile(hostile_srv, "framing")
    assert r.status == 200 and r.body == b"hello" and r.complete, r
    assert not r.chunked, r
    assert r.header("Content-Length") == "5", r
    for name in ("Upgrade", "TE", "Trailer", "Transfer-Encoding"):
        assert r.header(name) is None, r
    assert r.header("Keep-Alive") != "timeout=99", r
    assert "hop-by-hop header(s) Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer" in log


def test_connection_close_from_a_daemon_closes_the_client_connection(hostile_srv):
    daemons = hostile_daemons(hostile_srv)
    with hostile_srv.keepalive(timeout=15) as conn:
        r = conn.get("/hostile?close")
        assert r.status == 200 and r.body == b"hello", r
        assert r.header("Connection") == "close", r
        assert conn.server_closed(), "the connection stayed open"
    _until_replaced(hostile_srv, daemons | hostile_daemons(hostile_srv))


@pytest.mark.rwsgi_specific("mod_wsgi passes unusable Content-Length values on")
@pytest.mark.parametrize("case", ["negative-length", "text-length", "two-lengths"])
def test_unusable_content_length_from_a_daemon_is_a_502(hostile_srv, case):
    r, log = _hostile(hostile_srv, case)
    assert r.status == 502, r
    assert "invalid response head from daemon process 'hostile'" in log, log[-2000:]


@pytest.mark.rwsgi_specific("mod_wsgi relays whatever its daemon sends")
def test_a_body_never_exceeds_its_declared_length(hostile_srv):
    r, log = _hostile(hostile_srv, "overlong")
    assert r.status == 200 and r.body == b"hello" and r.complete and not r.trailing, r
    assert "sent more than the Content-Length it declared" in log


def test_a_short_body_is_visibly_broken(hostile_srv):
    r, log = _hostile(hostile_srv, "short")
    assert r.status == 200 and not r.complete and r.closed, r


@pytest.mark.rwsgi_specific("rwsgi's own frame: a small response whole, head and body at once")
def test_a_whole_response_frame_is_checked_like_head_and_body(hostile_srv):
    r, log = _hostile(hostile_srv, "whole-framing")
    assert r.status == 200 and r.body == b"hello" and r.complete and not r.chunked, r
    assert r.header("Content-Length") == "5" and r.header("Upgrade") is None, r
    assert "hop-by-hop header(s) Transfer-Encoding" in log
    r, log = _hostile(hostile_srv, "whole-overlong")
    assert r.status == 200 and r.body == b"hello" and r.complete and not r.trailing, r
    assert "sent more than the Content-Length it declared" in log
    r, log = _hostile(hostile_srv, "whole-short")
    assert r.status == 200 and not r.complete and r.closed, r
    r, log = _hostile(hostile_srv, "whole-text-length")
    assert r.status == 502, r
    assert "invalid response head from daemon process 'hostile'" in log, log[-2000:]
    r, log = _hostile(hostile_srv, "whole-bad-split")
    assert r.status == 502, r
    assert "invalid response from daemon process 'hostile'" in log, log[-2000:]


def test_a_file_truncated_under_mod_deflate_does_not_kill_the_child(hostile_srv):
    """The daemon passes a 256 MiB file for sendfile and truncates it while mod_deflate reads
    it: a memory-mapped read would SIGBUS the Apache child."""
    # When the file shrinks before mod_deflate has let the head out (a loaded machine), the
    # connection closes with nothing sent: still never a response that looks complete.
    r, log = _hostile(hostile_srv, "truncated-file", path="/deflated", may_close=True,
                      headers={"Accept-Encoding": "gzip"})
    assert r is None or not r.complete or r.status >= 500, r
    # Apache reaps a dead child within its one-second maintenance interval
    time.sleep(1.2)
    assert "exit signal" not in hostile_srv.error_log_since(0), hostile_srv.error_log()[-3000:]


# --------------------------------------------------------------------------
# 7. No panic escapes any thread.

PANIC = """
WSGIDaemonProcess p threads=2 graceful-timeout=20
WSGIScriptAlias /p {apps}/daemon_probe.wsgi process-group=p application-group=%{GLOBAL}
"""


@pytest.mark.rwsgi_specific("a test-only switch of rwsgi's daemon")
def test_a_panic_in_a_daemon_request_thread_costs_one_500(rwsgi_path):
    srv = start_server(rwsgi_path, PANIC, name="panic",
                       env={"RWSGI_TEST_PANIC_URI": "/p/boom"})
    try:
        pid = srv.get("/p?t=id").json()["pid"]
        # more panics than threads: each thread survives its panic and serves again
        for _ in range(5):
            r = srv.get("/p/boom")
            assert r.status == 500, r
            ok = srv.get("/p?t=id")
            assert ok.status == 200 and ok.json()["pid"] == pid, ok
        log = srv.error_log()
        assert log.count("internal error in daemon process 'p' while serving a request: "
                         "test-only panic (RWSGI_TEST_PANIC_URI)") == 5, log[-3000:]
        # in-flight accounting stayed right: a graceful restart does not wait graceful-timeout
        # for requests that ended in a panic
        t0 = time.monotonic()
        srv.graceful()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
            time.sleep(0.05)
        assert not os.path.exists("/proc/%d" % pid), "daemon process waited for phantom requests"
        assert time.monotonic() - t0 < 10
    finally:
        srv.stop()


# --------------------------------------------------------------------------
# 2. A daemon process holds nothing that is not its own.

INTRUDER = """
WSGIDaemonProcess a threads=1 python-path={a_marker} display-name=(wsgi:intruder)
WSGIDaemonProcess victim threads=2 python-path={b_marker} display-name=(wsgi:victim)
SetEnv INTRUDER_DUMP_DIR {{var}}
SetEnv INTRUDER_SCRIPT {{apps}}/marker.wsgi
WSGIScriptAlias /a {{apps}}/intruder.wsgi process-group=a application-group=%{{GLOBAL}}
WSGIScriptAlias /b {{apps}}/hello.wsgi process-group=victim application-group=%{{GLOBAL}}
"""


@pytest.mark.rwsgi_specific("mod_wsgi's daemons are forked from the Apache parent and trust any "
                            "request with a guessable token")
def test_an_application_cannot_reach_another_group(rwsgi_path, tmp_path):
    import glob
    import json
    import threading
    import uuid

    a_marker = str(tmp_path / ("a-marker-" + uuid.uuid4().hex))
    b_marker = str(tmp_path / ("victim-marker-" + uuid.uuid4().hex))
    for d in (a_marker, b_marker):
        os.makedirs(d)
    os.chmod(tmp_path, 0o755)
    srv = start_server(rwsgi_path, INTRUDER.format(a_marker=a_marker, b_marker=b_marker),
                       name="intruder", load_modules=["env"])
    try:
        assert srv.get("/b").status == 200  # the victim group runs
        mark = srv.log_mark()
        result = {}
        attack = threading.Thread(
            target=lambda: result.setdefault("r", srv.get("/a?attack", timeout=60)))
        attack.start()
        # another request for group a: an Apache thread connects to a's socket, and the
        # intruder (a's only request thread) takes its HELLO and request head
        time.sleep(1.5)
        def victim_request():
            try:
                srv.get("/a", timeout=3)  # taken over by the intruder: no answer expected
            except Exception:
                pass

        threading.Thread(target=victim_request, daemon=True).start()
        attack.join(60)
        r = result["r"]
        assert r.status == 200, (r, srv.error_log()[-3000:])
        rep = r.json()

        # memory: its own configuration is there (the copy works), group b's is not
        dump = open(rep["dump"], "rb").read()
        assert rep["dumped_bytes"] > 1 << 20
        assert a_marker.encode() in dump
        assert b_marker.encode() not in dump
        assert b"(wsgi:victim)" not in dump
        os.unlink(rep["dump"])

        # descriptors: /dev/null, the pipe to its supervisor, its own socket and its own
        # connections; no log file, no Apache listener, no other group's socket
        fds = {int(k): v for k, v in rep["fds"].items()}
        assert fds[0]["kind"] == "chr" and fds[1]["kind"] == "pipe" and fds[2]["kind"] == "pipe"
        assert fds[3]["kind"] == "socket" and fds[3]["name"] == rep["own_socket"]
        logs = {(os.stat(p).st_ino, os.stat(p).st_dev)
                for p in (srv.error_log_path, srv.access_log_path)}
        for fd, e in fds.items():
            assert (e["ino"], e["dev"]) not in logs, (fd, e)
            # writable files: only the shared-memory rings Apache children bring, and its own
            # group's status board (never another group's)
            if e["kind"] == "file" and e.get("writable"):
                assert e.get("mode", "").startswith("/memfd:rwsgi-"), (fd, e)
                if e["mode"].startswith("/memfd:rwsgi-status:"):
                    assert e["mode"].startswith("/memfd:rwsgi-status:a "), (fd, e)
            if e["kind"] == "socket":
                assert e["family"] == socket.AF_UNIX, (fd, e)
                assert e["name"] in ("", rep["own_socket"]), (fd, e)

        # everything it could find, replayed to the other group: refused, and logged there
        assert rep["stole_hello"] and rep["stole_head"], rep
        assert rep["replays"], rep
        for path, attempts in rep["replays"].items():
            assert set(attempts) >= {"stolen_hello", "stolen_hello_then_head", "stolen_head_alone",
                                     "random_hello", "forged_head"}, attempts
            for what, res in attempts.items():
                # it connected, and was hung up on: never a HELLO_ACK, never an answer
                assert res.get("answer") == "" or "reset" in res.get("error", "") \
                    or "Broken pipe" in res.get("error", ""), (what, res)
        srv.wait_for_log("daemon process 'victim' refused a connection", since=mark)
        assert not glob.glob(str(srv.var / "marker-ran-*"))

        # the memory of group b's processes and of the Apache children is closed to it
        assert rep["peek"], rep
        for pid, res in rep["peek"].items():
            assert res["mem"] != "read" and res["environ"] != "read", (pid, res)
    finally:
        srv.stop()


# --------------------------------------------------------------------------
# 3. Supervisors are supervised.

SUPERVISED = """
WSGIDaemonProcess sup processes=2 threads=4
WSGIScriptAlias /s {apps}/daemon_probe.wsgi process-group=sup application-group=%{GLOBAL}
"""


def _ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.rwsgi_specific("mod_wsgi has no supervisor: the Apache parent restarts its daemons")
def test_a_killed_supervisor_is_replaced_under_load(rwsgi_path):
    import threading

    srv = start_server(rwsgi_path, SUPERVISED, name="supervised")
    try:
        workers = {srv.get("/s?t=id").json()["pid"] for _ in range(8)}
        supervisor = _ppid(next(iter(workers)))
        assert _ppid(supervisor) == srv.pid  # the supervisor is a child of the Apache parent
        results = []  # (started, finished, status)
        stop = threading.Event()

        def load():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    status = srv.get("/s?t=sleep&s=0.05", timeout=20).status
                except Exception:
                    status = 0
                results.append((t0, time.monotonic(), status))

        clients = [threading.Thread(target=load) for _ in range(6)]
        for c in clients:
            c.start()
        time.sleep(1.0)
        mark = srv.log_mark()
        killed_at = time.monotonic()
        os.kill(supervisor, signal.SIGKILL)
        time.sleep(3.0)
        stop.set()
        for c in clients:
            c.join(30)
        after = [r for r in results if r[1] > killed_at]
        failures = [r for r in results if r[2] != 200]
        # at most the requests in flight when it died (6 clients), and in fact none: its
        # processes finish what they have, the new supervisor's take the queue
        assert len(failures) <= len(clients), failures
        # serving again within 2 s: no request started after the kill waited longer
        started_after = [r for r in after if r[0] >= killed_at]
        assert started_after and max(r[1] - r[0] for r in started_after) < 2.0, started_after[:5]
        assert any(r[2] == 200 and r[0] > killed_at + 1.0 for r in after)
        line = srv.wait_for_log(
            re.compile(r"the supervisor of daemon process group 'sup' \(pid %d\) was killed by "
                       r"SIGKILL after [\d.]+s; starting a new one" % supervisor), since=mark)
        assert line
        new_workers = {srv.get("/s?t=id").json()["pid"] for _ in range(8)}
        assert not new_workers & workers
        new_supervisor = _ppid(next(iter(new_workers)))
        assert new_supervisor != supervisor and _ppid(new_supervisor) == srv.pid
        # `apachectl stop`: SIGTERM to the parent; then nothing of the server is left (the
        # old supervisor's processes included: they followed it when it died)
        pgid = srv.pgid
        os.kill(srv.pid, signal.SIGTERM)
        srv.proc.wait(20)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and harness._pids_in_group(pgid):
            time.sleep(0.1)
        assert not harness._pids_in_group(pgid)
        for pid in workers | new_workers | {supervisor, new_supervisor}:
            assert not os.path.exists("/proc/%d" % pid) or open(
                "/proc/%d/stat" % pid).read().split(")")[1].split()[0] == "Z", pid
    finally:
        srv.stop()


def test_graceful_restart_reaps_old_supervisors_quietly(rwsgi_path):
    srv = start_server(rwsgi_path, SUPERVISED, name="long-lost")
    try:
        srv.get("/s")
        srv.graceful()
        srv.get("/s")
        srv.graceful()
        time.sleep(2.5)  # the MPM reaps within its one-second maintenance interval
        assert "long lost child came home" not in srv.error_log()
    finally:
        srv.stop()


# --------------------------------------------------------------------------
# 4. Every daemon death says why.

DEATHS = """
WSGIDaemonProcess crash threads=2
WSGIDaemonProcess mem threads=1 memory-limit=200000000
WSGIDaemonProcess cpu threads=1 cpu-time-limit=1 graceful-timeout=1
WSGIDaemonProcess slow threads=2 request-timeout=1
WSGIDaemonProcess kill threads=2
WSGIDaemonProcess quit threads=2
WSGIScriptAlias /crash {apps}/daemon_probe.wsgi process-group=crash application-group=%{GLOBAL}
WSGIScriptAlias /mem {apps}/daemon_probe.wsgi process-group=mem application-group=%{GLOBAL}
WSGIScriptAlias /cpu {apps}/daemon_probe.wsgi process-group=cpu application-group=%{GLOBAL}
WSGIScriptAlias /slow {apps}/daemon_probe.wsgi process-group=slow application-group=%{GLOBAL}
WSGIScriptAlias /kill {apps}/daemon_probe.wsgi process-group=kill application-group=%{GLOBAL}
WSGIScriptAlias /quit {apps}/daemon_probe.wsgi process-group=quit application-group=%{GLOBAL}
"""


@pytest.fixture(scope="module")
def deaths_srv(rwsgi_path):
    s = start_server(rwsgi_path, DEATHS, name="deaths")
    yield s
    s.stop()


def _death(srv, path, query, *, status=502, timeout=30):
    pid = srv.get(path + "?t=id").json()["pid"]
    mark = srv.log_mark()
    r = srv.get(path + "?" + query, timeout=timeout)
    assert r.status == status, (r, srv.error_log_since(mark)[-3000:])
    return pid, mark, r


DEATH_CASES = [
    # (mount, query, supervisor's words, 502 page)
    ("/crash", "t=segv", r"crashed with SIGSEGV \(a fault in native code", "crashed (SIGSEGV)"),
    ("/mem", "t=memory", r"died of SIGABRT at memory-limit=200000000", "ran out of its memory-limit"),
    ("/cpu", "t=busy&s=60", r"reached cpu-time-limit=1s", "reached its cpu-time-limit"),
    ("/quit", "t=exit", r"exited with status 3 \(the application ended the process", "exited"),
]


@pytest.mark.rwsgi_specific("mod_wsgi logs 'Truncated or oversized response headers' and, at "
                            "info level, a signal number")
@pytest.mark.parametrize("mount,query,words,brief", DEATH_CASES)
def test_each_death_names_its_cause(deaths_srv, mount, query, words, brief):
    srv = deaths_srv
    pid, mark, r = _death(srv, mount, query)
    group = mount[1:]
    # the supervisor's line, and the Apache child's line for the request in flight
    srv.wait_for_log(re.compile(r"daemon process %d of group '%s' %s.* after [\d.]+s; starting a "
                                r"new one" % (pid, group, words)), since=mark, timeout=15)
    srv.wait_for_log(re.compile(r"daemon process %d of group '%s' %s.*, while serving GET %s\?%s"
                                % (pid, group, words, re.escape(mount), re.escape(query))),
                     since=mark, timeout=15)
    assert ("The WSGI daemon process serving this request %s." % brief).encode() in r.body
    if query == "t=segv":
        # faulthandler's dump, attributed to the process that crashed
        srv.wait_for_log(re.compile(r"\[pid %d\] Fatal Python error: Segmentation fault" % pid),
                         since=mark)


@pytest.mark.rwsgi_specific("mod_wsgi logs the signal number at info level only")
def test_a_killed_process_names_the_signal_and_the_request(deaths_srv):
    import threading
    srv = deaths_srv
    pid = srv.get("/kill?t=id").json()["pid"]
    mark = srv.log_mark()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", srv.get("/kill?t=sleep&s=10", timeout=20)))
    t.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    t.join(20)
    assert result["r"].status == 502
    srv.wait_for_log(re.compile(r"daemon process %d of group 'kill' was killed by SIGKILL from "
                                r"outside rwsgi .*, while serving GET /kill\?t=sleep&s=10" % pid),
                     since=mark)


@pytest.mark.rwsgi_specific("mod_wsgi answers 500")
def test_request_timeout_names_the_limit_and_the_requests(deaths_srv):
    srv = deaths_srv
    pid, mark, r = _death(srv, "/slow", "t=sleep&s=30", status=504)
    srv.wait_for_log(re.compile(r"request GET /slow\?t=sleep&s=30 has run for [\d.]+s, over "
                                r"request-timeout=1s; restarting the process\. Requests in flight: "
                                r"GET /slow\?t=sleep&s=30"), since=mark)
    srv.wait_for_log(re.compile(r"daemon process %d of group 'slow' was restarted by "
                                r"request-timeout=1s" % pid), since=mark)
    # where it was stuck, before the restart
    srv.wait_for_log(re.compile(r"Python stack of request GET /slow\?t=sleep&s=30 \(thread \d+\), "
                                r"most recent call last:"), since=mark)
    srv.wait_for_log(re.compile(r"daemon_probe\.wsgi\", line \d+, in application"), since=mark)
    srv.wait_for_log(re.compile(r"time\.sleep\(float\(q\.get\(\"s\", \"1\"\)\)\)"), since=mark)


# --------------------------------------------------------------------------
# 5. The socket directory cannot be turned against root.

@pytest.mark.rwsgi_specific("mod_wsgi accepts any socket directory")
@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775])
def test_a_socket_prefix_others_can_write_to_fails_configtest(make_server, tmp_path, mode):
    d = tmp_path / "sockets"
    d.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(d, mode)
    if mode == 0o775:
        os.chown(d, 0, 33)  # group www-data may write
    srv = make_server("WSGISocketPrefix %s/wsgi\nWSGIDaemonProcess g\n" % d, start=False)
    ok, out = srv.configtest()
    assert not ok, out
    assert "WSGISocketPrefix %s/wsgi" % d in out, out
    assert "the directory '%s' can be written by users other than root" % d in out, out
    assert "chmod go-w" in out, out
    # the same directory made safe passes
    os.chmod(d, 0o755)
    os.chown(d, 0, 0)
    ok, out = srv.configtest()
    assert ok, out
