"""The status page (`SetHandler rwsgi-status`): what it counts adds up under load, in both
modes; requests in flight show with their URI, client and thread; a killed daemon process
shows as a restart with its cause; the Python stacks of running requests are logged on
demand; Prometheus's own parser reads `?prometheus`; a hostile daemon application that
scribbles over its status board cannot break the page or an Apache child; nothing is served
unless configured, and `Require` applies. A headless Chromium renders the HTML page."""
import json
import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import start_server

pytestmark = pytest.mark.rwsgi_specific("mod_wsgi has no status page (mod_wsgi 6 sends "
                                        "metrics to a separate telemetry service)")

CONFIG = """
WSGIDaemonProcess watched processes=2 threads=3
WSGIDaemonProcess hostile processes=1 threads=1
WSGIScriptAlias /embedded {apps}/status_app.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /daemon {apps}/status_app.wsgi process-group=watched application-group=%{GLOBAL}
WSGIScriptAlias /hostile {apps}/status_app.wsgi process-group=hostile application-group=%{GLOBAL}
<Location /rwsgi-status>
    SetHandler rwsgi-status
</Location>
<Location /denied-status>
    SetHandler rwsgi-status
    Require all denied
</Location>
"""

MOUNT = {"embedded": "/embedded", "daemon": "/daemon"}
GROUP = {"embedded": "embedded", "daemon": "watched"}


@pytest.fixture(scope="module")
def srv(rwsgi_path):
    s = start_server(rwsgi_path, CONFIG, name="status")
    yield s
    s.stop()


def status(srv) -> dict:
    r = srv.get("/rwsgi-status?json")
    assert r.status == 200, r.body
    return json.loads(r.body)


def group(doc: dict, name: str) -> dict:
    return next(g for g in doc["groups"] if g["name"] == name)


def wait_for(what, timeout=10.0, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(step)


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
def test_counters_add_up_under_load(srv, mode):
    before = group(status(srv), GROUP[mode])
    paths = [MOUNT[mode] + "/ok"] * 150 + [MOUNT[mode] + "/missing?code=404"] * 30 + \
            [MOUNT[mode] + "/broken?code=503"] * 20
    posts = [MOUNT[mode] + "/upload?t=read"] * 10

    def send(p):
        return srv.post(p, b"x" * 1000).status if "upload" in p else srv.get(p).status
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, paths + posts))
    paths += posts
    assert codes.count(200) == 160 and codes.count(404) == 30 and codes.count(503) == 20
    after = wait_for(lambda: (lambda g: g if not g["in_flight"] else None)(group(status(srv), GROUP[mode])))
    assert after, "requests still in flight after the load ended"
    a, b = after["apache"], before["apache"]
    assert a["requests"] - b["requests"] == len(paths)
    assert a["status"]["2xx"] - b["status"]["2xx"] == 160
    assert a["status"]["4xx"] - b["status"]["4xx"] == 30
    assert a["status"]["5xx"] - b["status"]["5xx"] == 20
    assert sum(a["time_histogram"]) - sum(b["time_histogram"]) == len(paths)
    assert a["bytes_out"] - b["bytes_out"] == 160 * len(b"status 200\n") + 30 * 11 + 20 * 11
    assert a["bytes_in"] - b["bytes_in"] == 10 * 1000
    served = sum(p["requests"] for p in after["processes"])
    assert served >= len(paths)  # since each process started
    if mode == "daemon":
        d, db = after["daemon"], before["daemon"]
        assert d["requests"] - db["requests"] == len(paths)
        assert sum(d["queue_histogram"]) - sum(db["queue_histogram"]) == len(paths)
        assert len(after["processes"]) == 2 and all(p["pid"] > 0 for p in after["processes"])
        assert all(p["threads_idle"] == 3 for p in after["processes"])
        assert after["queue_length"] == 0
    for p in after["processes"]:
        assert p["rss_bytes"] > 1 << 20 and p["uptime_seconds"] > 0


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
def test_a_running_request_shows_with_its_uri_client_and_thread(srv, mode):
    uri = MOUNT[mode] + "/slow/%s?t=sleep&s=2" % mode
    t = threading.Thread(target=srv.get, args=(uri,))
    t.start()
    try:
        def running():
            return [r for r in group(status(srv), GROUP[mode])["in_flight"] if uri in r["request"]]
        found = wait_for(running, timeout=5)
        assert found, "the slow request never showed"
        r = found[0]
        assert r["request"] == "GET " + uri and r["client"] == "127.0.0.1"
        assert r["running_seconds"] >= 0 and isinstance(r["thread"], int) and r["pid"] > 0
        html = srv.get("/rwsgi-status?refresh=0").body.decode()
        assert "GET %s" % uri.replace("&", "&amp;") in html
    finally:
        t.join()
    assert wait_for(lambda: not group(status(srv), GROUP[mode])["in_flight"], timeout=5)


def test_a_killed_daemon_process_shows_as_a_restart_with_its_cause(srv):
    g = group(status(srv), "watched")
    victim = g["processes"][1]
    assert victim["restarts"] == 0 and victim["last_death"] is None
    os.kill(victim["pid"], signal.SIGKILL)

    def replaced():
        p = group(status(srv), "watched")["processes"][1]
        return p if p["pid"] not in (0, victim["pid"]) else None
    p = wait_for(replaced, timeout=15)
    assert p, "the killed process was not replaced"
    assert p["restarts"] == 1 and "SIGKILL" in p["last_death"]["cause"]
    html = srv.get("/rwsgi-status?refresh=0").body.decode()
    assert "SIGKILL" in html


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
def test_stacks_of_running_requests_are_logged_on_demand(srv, mode):
    uri = MOUNT[mode] + "/stuck?t=sleep&s=3"
    t = threading.Thread(target=srv.get, args=(uri,))
    t.start()
    try:
        assert wait_for(lambda: group(status(srv), GROUP[mode])["in_flight"], timeout=5)
        mark = srv.log_mark()
        ask = "/rwsgi-status?" + ("embedded-stacks" if mode == "embedded" else "stacks=watched")
        # a form posted from another site is refused (the button is for the page itself)
        assert srv.post(ask, headers=[("Sec-Fetch-Site", "cross-site")]).status == 403
        assert srv.post(ask, headers=[("Origin", "http://evil.example")]).status == 403
        r = srv.post(ask, headers=[("Sec-Fetch-Site", "same-origin")])
        assert r.status == 202
        srv.wait_for_log(re.compile(r"Python stack of request GET %s \(running for [\d.]+s\)"
                                    % re.escape(uri)), since=mark)
        srv.wait_for_log(re.compile(r'status_app\.wsgi", line \d+, in application'), since=mark)
        assert srv.post("/rwsgi-status?stacks=nosuchgroup").status == 404
        r = srv.request("PUT", "/rwsgi-status")
        assert r.status == 405 and dict(r.headers).get("Allow") == "GET, HEAD, POST"
    finally:
        t.join()


def test_prometheus_output_reads_with_prometheus_own_parser(srv):
    from prometheus_client.parser import text_string_to_metric_families

    assert srv.get("/daemon/x").status == 200 and srv.get("/embedded/x").status == 200
    r = srv.get("/rwsgi-status?prometheus")
    assert r.status == 200
    assert dict(r.headers).get("Content-Type", "").startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.body.decode())}
    doc = status(srv)
    reqs = {(s.labels["group"], s.labels["class"]): s.value
            for s in families["rwsgi_requests"].samples}
    for name in ("embedded", "watched"):
        assert reqs[(name, "2xx")] >= group(doc, name)["apache"]["status"]["2xx"] - 1
    assert families["rwsgi_request_duration_seconds"].type == "histogram"
    buckets = [s for s in families["rwsgi_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["group"] == "watched"]
    assert buckets[-1].labels["le"] == "+Inf" and len(buckets) == 15
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)
    assert families["rwsgi_queue_wait_seconds"].type == "histogram"
    pids = {s.labels["pid"] for s in families["rwsgi_process_resident_memory_bytes"].samples
            if s.labels["group"] == "watched"}
    assert pids == {str(p["pid"]) for p in group(doc, "watched")["processes"]}
    modes = {s.labels["group"]: s.labels["mode"] for s in families["rwsgi_requests"].samples}
    assert modes["embedded"] == "embedded" and modes["watched"] == "daemon"
    start = families["rwsgi_start_time_seconds"].samples[0].value
    assert abs(start - doc["started"]) < 1


def test_nothing_is_served_unless_configured_and_require_applies(srv):
    assert srv.get("/rwsgi-status-elsewhere").status == 404
    assert srv.get("/denied-status").status == 403


def test_a_hostile_daemon_application_cannot_break_the_page(srv):
    mark = srv.log_mark()
    r = srv.get("/hostile/?t=scribble")
    assert r.status == 200, r.body
    done = json.loads(r.body)
    assert done["truncate"].startswith("refused"), done  # sealed: cannot be made to SIGBUS us
    for _ in range(3):
        html = srv.get("/rwsgi-status?refresh=0")
        assert html.status == 200
        assert b"<script>" not in html.body
        json.loads(srv.get("/rwsgi-status?json").body)
        from prometheus_client.parser import text_string_to_metric_families
        list(text_string_to_metric_families(srv.get("/rwsgi-status?prometheus").body.decode()))
    assert srv.get("/embedded/ok").status == 200
    log = srv.error_log_since(mark)
    assert "exit signal" not in log and "Segmentation" not in log, log


def test_the_html_page_renders_in_chromium(srv, tmp_path):
    from test_browser import Browser, CHROMEDRIVER, CHROMIUM
    from conftest import _missing

    if not all(os.access(p, os.X_OK) for p in (CHROMIUM, CHROMEDRIVER)):
        _missing("the status page screenshot needs chromium and chromium-driver")
    from selenium.webdriver.common.by import By

    assert srv.get("/daemon/warm").status == 200 and srv.get("/embedded/warm").status == 200
    b = Browser()
    try:
        b.driver.get(f"http://127.0.0.1:{srv.port}/rwsgi-status?refresh=0")
        sections = {s.get_attribute("data-group"): s
                    for s in b.driver.find_elements(By.CSS_SELECTOR, "section.group")}
        assert {"embedded", "watched", "hostile"} <= set(sections)
        rows = sections["watched"].find_elements(By.CSS_SELECTOR, "table.processes tr.process")
        assert len(rows) == 2 and all(r.is_displayed() for r in rows)
        assert "Daemon process group" in sections["watched"].text
        shot = tmp_path / "status.png"
        assert b.driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 5000
        assert b.driver.title == "rwsgi status"
    finally:
        b.close()


def test_a_virtual_host_group_over_http2_in_a_debian_layout(rwsgi_path):
    """Debian's layout (a2enmod http2, a site enabled with a2ensite): a daemon group declared
    in a <VirtualHost> that speaks h2c, and its status page in the same virtual host. Requests
    multiplexed on one HTTP/2 connection run on mod_http2's worker threads: each is counted
    once, none as unrecorded."""
    import subprocess
    from layouts import DebianLayout

    deb = DebianLayout(rwsgi_path, name="status-h2")
    try:
        deb.enable_module()
        deb._check(deb.a2("a2enmod", "-q", "http2"))
        deb.add_site("shop", (
            f"<VirtualHost 127.0.0.1:{deb.port}>\n"
            "    ServerName shop.test\n"
            "    Protocols h2c http/1.1\n"
            "    WSGIDaemonProcess shop threads=3\n"
            f"    WSGIScriptAlias /app {deb.apps}/status_app.wsgi process-group=shop "
            "application-group=%{GLOBAL}\n"
            "    <Location /rwsgi-status>\n"
            "        SetHandler rwsgi-status\n"
            "        Require local\n"
            "    </Location>\n"
            f"    <Directory {deb.apps}>\n"
            "        Require all granted\n"
            "    </Directory>\n"
            "</VirtualHost>\n"))
        deb.start()
        def h2(path):
            # one connection per request (curl 7.88 does not send a second request on a
            # reused prior-knowledge connection); each stream still runs on an h2 worker
            return subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-H", "Host: shop.test",
                                   "-w", "\n%{http_code} %{http_version}",
                                   f"http://127.0.0.1:{deb.port}{path}"],
                                  capture_output=True, text=True, timeout=30).stdout

        for i in range(30):
            assert h2(f"/app/{i}").endswith("\n200 2")
        body, _, last = h2("/rwsgi-status?json").rpartition("\n")
        assert last == "200 2"
        doc = json.loads(body)
        g = group(doc, "shop")
        assert g["apache"]["requests"] == 30 and g["apache"]["status"]["2xx"] == 30, g["apache"]
        assert g["daemon"]["requests"] == 30 and doc["unrecorded_requests"] == 0
        assert [p["pid"] > 0 for p in g["processes"]] == [True]
    finally:
        deb.stop()
