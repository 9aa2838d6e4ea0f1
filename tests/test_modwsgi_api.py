"""The `mod_wsgi` Python module API as applications use it, embedded and in a daemon group.

Reference: mod_wsgi 4.9.4 (src/server/wsgi_interp.c wsgi_publish_process_stopping and the
module set-up in wsgi_interp.c ~1160-1310; wsgi_metrics.c: request_data, subscribe_*,
wsgi_publish_event, wsgi_call_callbacks, process/request/server_metrics; mod_wsgi.c:
Adapter_start_response (response_started), Adapter_run (request_started,
request_finished), wsgi_execute_script (wsgi_start_request / wsgi_end_request);
wsgi_logger.c wsgi_log_python_error (request_exception)), and for LogHandler /
subscribe_signals / the decorator-style return value mod_wsgi 6.1.1 (wsgi_module.c,
wsgi_logger.c, wsgi_metrics.c, wsgi_daemon.c). The facts, with probe results of both
reference modules, are written up in /tmp/modwsgi-facts/module_api.md.

In short (4.9.4):

* Module attributes exist at import time: process_group ('' embedded, the group name in a
  daemon), application_group, maximum_processes / threads_per_process (daemon: processes= /
  threads=; embedded: from the MPM: ThreadsPerChild, or 1 without threads;
  AP_MPMQ_MAX_DAEMON_USED as inherited at fork, so it differs between children), version
  (a 3-tuple of ints), FileWrapper (the type behind wsgi.file_wrapper), active_requests (a
  dict), event_callbacks / shutdown_callbacks (the subscriber lists, in order), and the
  functions request_data, subscribe_events, subscribe_shutdown, process_metrics,
  request_metrics, server_metrics.
* request_data() is a fresh dict per request, the same object all through it (app and
  every request event's request_data), and active_requests[environ['mod_wsgi.request_id']]
  while the request runs; outside a request (a background thread, a WSGIImportScript
  preload) it raises RuntimeError. The script imported lazily by a request sees that
  request's dict.
* Callbacks are called as callback(event_name, **event), in subscription order; a dict
  returned is merged into the event for the later subscribers (only application_object is
  read back: it replaces the application); anything else is ignored; an exception is logged
  and the next subscriber still runs. request_started (request_id, thread_id,
  daemon_connects, daemon_restarts, request_start, queue_start, daemon_start,
  application_object, request_environ, application_start, request_data), response_started
  (request_id, response_status, response_headers, exception_info, request_data),
  request_exception (request_id, exception_info, request_data), request_finished
  (request_id, input_reads, input_length, input_time, output_length, output_writes,
  cpu_user_time, cpu_system_time, output_time, application_finish, application_time,
  request_data). 6.x only adds keys.
* subscribe_shutdown callbacks get ('process_stopping', shutdown_reason=str) when the
  process ends (Apache child exit in embedded mode, daemon shutdown), after the
  subscribe_events callbacks got the same event.
* process_metrics() / request_metrics() (first call {} and starts the sample) /
  server_metrics() (None unless WSGIServerMetrics On / server-metrics=On; 4.9.4 has a bug:
  embedded mode without the directive returns the scoreboard).

The probe application is apps/api_probe.wsgi. Module flavours are told apart by the Server
banner in the error log: cases marked for 6.x are strict xfails on mod_wsgi 4.x
(RWSGI_TEST_MODULE=modwsgi); rwsgi is expected to pass them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
import uuid

import pytest

from conftest import MODES, in_mode
from harness import start_server

CONFIG = """
WSGIScriptAlias /api {apps}/api_probe.wsgi
WSGIScriptAlias /other {apps}/api_probe.wsgi
"""

# what 4.9.4 gives; 6.x gives these and more
REQUEST_STARTED_KEYS = {
    "request_id": "str", "thread_id": "int", "daemon_connects": "int",
    "daemon_restarts": "int", "request_start": "float", "queue_start": "float",
    "daemon_start": "float", "application_object": "function", "request_environ": "dict",
    "application_start": "float", "request_data": "dict",
}
RESPONSE_STARTED_KEYS = {
    "request_id": "str", "response_status": "str", "response_headers": "list",
    "request_data": "dict",  # + exception_info: None or a 3-tuple
}
REQUEST_FINISHED_KEYS = {
    "request_id": "str", "input_reads": "int", "input_length": "int", "input_time": "float",
    "output_length": "int", "output_writes": "int", "output_time": "float",
    "application_finish": "float", "application_time": "float", "request_data": "dict",
    # cpu_user_time / cpu_system_time (float): only when the thread's CPU clock could be read
}
REQUEST_EXCEPTION_KEYS = {"request_id": "str", "exception_info": "tuple", "request_data": "dict"}

PROCESS_METRICS_KEYS = {
    "pid": "int", "request_busy_time": "float", "request_count": "int",
    "memory_max_rss": "int", "memory_rss": "int", "cpu_user_time": "float",
    "cpu_system_time": "float", "restart_time": "float", "current_time": "float",
    "running_time": "int", "request_threads": "int", "active_requests": "int",
    "threads": "list",
}
REQUEST_METRICS_KEYS = {
    "pid": "int", "start_time": "float", "stop_time": "float", "sample_period": "float",
    "cpu_user_time": "float", "cpu_system_time": "float", "memory_max_rss": "int",
    "memory_rss": "int", "request_threads_maximum": "int", "request_threads_started": "int",
    "request_threads_active": "int", "capacity_utilization": "float", "request_count": "int",
    "request_throughput": "float", "server_time": "float", "application_time": "float",
    "server_time_buckets": "list", "queue_time_buckets": "list",
    "daemon_time_buckets": "list", "application_time_buckets": "list",
    "request_threads_buckets": "list",
    # queue_time / daemon_time: float in a daemon process, None embedded
}
SERVER_METRICS_KEYS = {
    "server_limit": "int", "thread_limit": "int", "running_generation": "int",
    "restart_time": "float", "current_time": "float", "running_time": "int",
    "processes": "list",
}
SCOREBOARD_PROCESS_KEYS = {"process_num": "int", "pid": "int", "generation": "int",
                           "quiescing": "bool", "workers": "list"}
SCOREBOARD_WORKER_KEYS = {
    "thread_num": "int", "generation": "int", "status": "str", "access_count": "int",
    "bytes_served": "int", "start_time": "float", "stop_time": "float", "last_used": "float",
    "client": "str", "request": "str", "vhost": "str",
}


# --------------------------------------------------------------------------
# module flavour (the Server banner in the error log)

_BANNER = re.compile(r"\b(mod_wsgi|rwsgi)/(\d+)\.(\d+)")


def flavour(srv) -> "tuple[str, tuple[int, int]]":
    m = None
    for m in _BANNER.finditer(srv.error_log()):
        pass
    if m is None:
        return ("unknown", (0, 0))
    return (m.group(1), (int(m.group(2)), int(m.group(3))))


def modwsgi4(srv) -> bool:
    name, version = flavour(srv)
    return name == "mod_wsgi" and version < (6, 0)


def modwsgi6(srv) -> bool:
    name, version = flavour(srv)
    return name == "mod_wsgi" and version >= (6, 0)


def rwsgi(srv) -> bool:
    return flavour(srv)[0] == "rwsgi"


def from_6x(request, srv, why: str):
    """The case below is mod_wsgi 6.x behaviour: a strict xfail on mod_wsgi 4.x."""
    if modwsgi4(srv):
        request.node.add_marker(pytest.mark.xfail(reason="mod_wsgi 6.x only: " + why,
                                                  strict=True))


def modwsgi4_bug(request, srv, why: str):
    """mod_wsgi 4.9.4 gets the case below wrong (6.x fixed it): a strict xfail on 4.x."""
    if modwsgi4(srv):
        request.node.add_marker(pytest.mark.xfail(reason="mod_wsgi 4.x bug: " + why,
                                                  strict=True))


# --------------------------------------------------------------------------
# helpers


def api(srv, path: str, conn=None, **kw) -> dict:
    """GET (or POST with body=) a probe path; 200 and JSON expected."""
    client = conn or srv
    r = client.post(path, **kw) if "body" in kw else client.get(path, **kw)
    assert r.status == 200, f"{path}: {r.status} {r.text[:600]}"
    return r.json()


def need(srv, *wanted: str, prefix: str = "/api"):
    """Fail at once, naming them, when the module lacks names the test uses."""
    have = api(srv, prefix + "/attrs")["now"]
    missing = [n for n in wanted if n not in have]
    assert not missing, f"the mod_wsgi module lacks {missing}"


def read_events(srv) -> list:
    out = []
    for f in sorted(srv.var.glob("events-*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line being written
                pass
    return out


def events_for(srv, rid: str, until: str = "request_finished", timeout: float = 10) -> list:
    """The recorded events of one request, in order; waits until `until` is among them
    (request_finished is published after the response has gone out)."""
    deadline = time.monotonic() + timeout
    while True:
        evs = [e for e in read_events(srv) if e["request_id"] == rid]
        if any(e["name"] == until for e in evs) or time.monotonic() > deadline:
            return sorted(evs, key=lambda e: e["seq"])
        time.sleep(0.05)


def rid_of(srv, query: str, timeout: float = 10) -> str:
    """The request id of the request sent with QUERY_STRING `query` (for error responses)."""
    deadline = time.monotonic() + timeout
    while True:
        for e in read_events(srv):
            if e["name"] == "request_started" and e.get("query") == query:
                return e["request_id"]
        assert time.monotonic() < deadline, f"no request_started event for ?{query}"
        time.sleep(0.05)


def wait_files(srv, pattern: str, count: int = 1, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(srv.var.glob(pattern))
        if len(files) >= count or time.monotonic() > deadline:
            return [json.loads(f.read_text()) for f in files]
        time.sleep(0.1)


def _kind(shape) -> str:
    """A type name from the probe's shape: lists are ["list", len, item], dicts {key: ...}."""
    if isinstance(shape, list):
        return "list"
    if isinstance(shape, dict):
        return "dict"
    return shape


def check_keys(d: dict, expected: dict, what: str):
    missing = sorted(set(expected) - set(d))
    assert not missing, f"{what}: missing {missing}; got {sorted(d)}"
    wrong = {k: d[k] for k in expected if _kind(d[k]) != expected[k]}
    assert not wrong, f"{what}: types {wrong}, expected {[expected[k] for k in wrong]}"


def check_event(ev: dict, expected: dict):
    check_keys(ev["types"], expected, ev["name"])


def names(evs) -> list:
    return [e["name"] for e in evs]


# --------------------------------------------------------------------------
# the main site: /api and /other (two interpreters of the same script)


@pytest.fixture(scope="module", params=MODES)
def srv(request, rwsgi_path):
    s = start_server(rwsgi_path, in_mode(CONFIG, request.param), name=f"api-{request.param}")
    s.mode = request.param
    yield s
    s.stop(wait=False)


# --------------------------------------------------------------------------
# module attributes


def test_module_attributes(srv):
    r = api(srv, "/api/attrs")
    assert r["import"]["missing"] == [], f"the mod_wsgi module lacks {r['import']['missing']}"
    for when in ("import", "now"):
        a = r["import"]["attrs"] if when == "import" else r["now"]
        kinds = {n: a[n]["type"] for n in a}
        for n in ("process_group", "application_group"):
            assert kinds[n] == "str", (when, n, kinds[n])
        for n in ("maximum_processes", "threads_per_process"):
            assert kinds[n] == "int", (when, n, kinds[n])
        assert kinds["version"] == "tuple"
        assert kinds["active_requests"] == "dict"
        assert kinds["event_callbacks"] == "list" and kinds["shutdown_callbacks"] == "list"
        for n in ("request_data", "subscribe_events", "subscribe_shutdown", "process_metrics",
                  "request_metrics", "server_metrics"):
            assert a[n]["callable"], (when, n)
        assert a["FileWrapper"].get("is_type"), a["FileWrapper"]
    version = r["now"]["version"]["value"]
    assert len(version) == 3 and all(isinstance(x, int) for x in version), version
    assert tuple(version) >= (4, 9, 0)
    # wsgi.file_wrapper is the module's FileWrapper type
    assert r["file_wrapper_is_FileWrapper"] is True
    # the subscriber lists, in subscription order
    assert r["event_callbacks"] == ["recorder", "installer", "raiser", "observer"]
    assert r["shutdown_callbacks"] == ["on_shutdown"]


def test_request_timeout_raised_by_the_application_is_a_504(request, srv):
    """As in mod_wsgi 6: mod_wsgi.RequestTimeout ending a request is not an application
    error: 504, one info line, no traceback."""
    from_6x(request, srv, "RequestTimeout")
    mark = srv.log_mark()
    r = srv.get("/api/raise_request_timeout")
    assert r.status == 504, (r.status, srv.error_log_since(mark)[-2000:])
    srv.wait_for_log("Request interrupted by RequestTimeout; thread recovered.", since=mark)
    assert "Traceback" not in srv.error_log_since(mark)


def test_process_and_application_group(srv):
    r = api(srv, "/api/attrs")
    group = "" if srv.mode == "embedded" else "suite"
    for a in (r["import"]["attrs"], r["now"]):
        assert a["process_group"]["value"] == group
        assert a["application_group"]["value"] == r["environ"]["mod_wsgi.application_group"]
    assert r["environ"]["mod_wsgi.process_group"] == group
    other = api(srv, "/other/attrs")
    assert other["now"]["application_group"]["value"] != r["now"]["application_group"]["value"]


PROCESSES_CONFIG = """
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess p2t3 processes=2 threads=3
WSGIDaemonProcess defaults
WSGIScriptAlias /emb {apps}/api_probe.wsgi
WSGIScriptAlias /p2t3 {apps}/api_probe.wsgi process-group=p2t3
WSGIScriptAlias /defaults {apps}/api_probe.wsgi process-group=defaults
"""


def test_daemon_processes_and_threads(make_server):
    """Daemon mode: the group's processes= and threads= (defaults 1 and 15)."""
    srv = make_server(PROCESSES_CONFIG, name="api-procs")
    need(srv, "maximum_processes", "threads_per_process", prefix="/emb")
    for path, expected in (("/p2t3", (2, 3)), ("/defaults", (1, 15))):
        for _ in range(3):
            a = api(srv, path + "/attrs")["now"]
            got = (a["maximum_processes"]["value"], a["threads_per_process"]["value"])
            assert got == expected, (path, got)
    # and in embedded mode of the same (event MPM) server: ThreadsPerChild 8
    a = api(srv, "/emb/attrs")
    assert a["now"]["threads_per_process"]["value"] == 8
    assert 1 <= a["now"]["maximum_processes"]["value"] <= 16


@pytest.mark.parametrize("mpm,threads", [("worker", 8), ("prefork", 1)])
def test_embedded_processes_and_threads_follow_the_mpm(make_server, mpm, threads):
    """Embedded mode: threads_per_process is ThreadsPerChild (1 without threads);
    maximum_processes is the MPM's daemon count as the child saw it when it was forked
    (AP_MPMQ_MAX_DAEMON_USED), between 1 and ServerLimit (the harness: 16, prefork 8)."""
    srv = make_server("WSGIScriptAlias /api {apps}/api_probe.wsgi\n", mpm=mpm,
                      name=f"api-{mpm}")
    need(srv, "maximum_processes", "threads_per_process")
    limit = 8 if mpm == "prefork" else 16
    for _ in range(4):
        r = api(srv, "/api/attrs")
        assert r["now"]["threads_per_process"]["value"] == threads
        assert 1 <= r["now"]["maximum_processes"]["value"] <= limit
        assert r["environ"]["wsgi.multithread"] is (threads > 1)


# --------------------------------------------------------------------------
# request_data() and active_requests


def test_request_data_is_one_dict_per_request(srv):
    need(srv, "subscribe_events", "request_data", "active_requests")
    with srv.keepalive() as conn:
        first = api(srv, "/api/request-data", conn)
        second = api(srv, "/api/request-data", conn)
    for r in (first, second):
        assert r["type"] == "dict"
        assert r["same_object_twice"] is True
        # the request_started subscriber's dict is the application's
        assert r["contents"].get("seeded") == r["request_id"], r["contents"]
        # ... and the value under the request id in active_requests
        assert r["is_active_requests_value"] is True
        # request_environ of request_started is the environ the application gets
        assert r["environ_is_event_environ"] is True
        assert r["environ_from_subscriber"] == r["request_id"]
    # a new dict for the next request: what the first request wrote is gone
    assert "app_wrote" not in second["contents"], second["contents"]
    assert first["request_id"] != second["request_id"]


def test_request_data_in_a_lazily_loaded_script_is_that_requests(srv):
    """The script imported by a request may already call request_data()."""
    need(srv, "request_data", "active_requests")
    r = api(srv, "/api/attrs")
    assert r["import"]["request_data"]["ok"] is True, r["import"]["request_data"]
    assert r["import"]["request_data"]["type"] == "dict"
    # ... and that request is in active_requests at import time
    assert len(r["import"]["active_requests"]) >= 1


def test_request_data_outside_a_request_raises_runtime_error(srv):
    need(srv, "request_data")
    r = api(srv, "/api/bg")
    assert r["background"]["ok"] is False
    assert r["background"]["error"] == "RuntimeError", r["background"]


PRELOAD_CONFIG = """
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess pre threads=2
WSGIImportScript {apps}/api_probe.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}
WSGIImportScript {apps}/api_probe.wsgi process-group=pre application-group=%{GLOBAL}
WSGIScriptAlias /emb {apps}/api_probe.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}
WSGIScriptAlias /dmn {apps}/api_probe.wsgi process-group=pre application-group=%{GLOBAL}
"""


def test_request_data_in_a_preloaded_script_raises_runtime_error(make_server):
    """WSGIImportScript runs the script at process start, outside any request."""
    srv = make_server(PRELOAD_CONFIG, name="api-preload")
    need(srv, "request_data", "active_requests", prefix="/emb")
    for path in ("/emb", "/dmn"):
        deadline = time.monotonic() + 10
        while True:
            r = api(srv, path + "/attrs")
            # an embedded child that has not finished its preload yet is not what we want
            if r["import"]["request_data"].get("error") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r["import"]["request_data"]["ok"] is False, (path, r["import"])
        assert r["import"]["request_data"]["error"] == "RuntimeError"
        assert r["import"]["active_requests"] == []
        # the preloaded module serves the requests
        assert r["import"]["pid"] == r["pid"]


def test_active_requests_during_and_after_a_request(srv):
    need(srv, "request_data", "active_requests")
    with srv.keepalive() as conn:
        a = api(srv, "/api/active", conn)
        b = api(srv, "/api/active", conn)
    for r in (a, b):
        assert r["type"] == "dict"
        assert r["own"] is True and r["own_is_request_data"] is True
        assert r["key_types"] == ["str"] and r["value_types"] == ["dict"]
    # the finished request is gone
    assert a["request_id"] not in b["ids"], b["ids"]


def test_active_requests_lists_concurrent_requests(srv):
    if srv.mode == "embedded":
        pytest.skip("two concurrent requests reach one process only in the daemon group")
    need(srv, "request_data", "active_requests")
    key = uuid.uuid4().hex
    held = {}
    t = threading.Thread(target=lambda: held.update(api(srv, f"/api/hold?key={key}",
                                                        timeout=30)))
    t.start()
    try:
        files = wait_files(srv, f"held-{key}", timeout=10)
        assert files, "the holding request did not start"
        hold_rid = files[0]["request_id"]
        r = api(srv, "/api/active")
        assert set(r["ids"]) >= {hold_rid, r["request_id"]}, r["ids"]
        # each value is that request's request_data()
        assert "hold_key" in r["values"][hold_rid], r["values"]
    finally:
        (srv.var / f"release-{key}").write_text("go")
        t.join(30)
    assert held.get("released") is True, held
    r = api(srv, "/api/active")
    assert hold_rid not in r["ids"]


# --------------------------------------------------------------------------
# events


def test_events_of_a_request_in_order(srv):
    need(srv, "subscribe_events", "request_data", "active_requests")
    resp = srv.get("/api/request-data")
    assert resp.status == 200, resp
    r = resp.json()
    rid = r["request_id"]
    evs = events_for(srv, rid)
    assert names(evs) == ["request_started", "response_started", "request_finished"], evs
    started, response, finished = evs
    check_event(started, REQUEST_STARTED_KEYS)
    check_event(response, RESPONSE_STARTED_KEYS)
    check_event(finished, REQUEST_FINISHED_KEYS)
    for e in evs:
        # called as callback(name, **event), in the request's thread, with its request_data
        assert e["request_id"] == rid
        assert e["request_data_is_current"] is True, e
    assert started["environ_request_id"] == rid
    assert started["thread_id"] == started["environ_thread_id"]
    assert started["application_object_is_application"] is True
    assert started["path"] == "/request-data" and started["script_name"] == "/api"
    assert response["response_status"] == "200 OK"
    assert response["response_headers"] == [["Content-Type", "application/json"]]
    assert response["exception_info"] is None
    assert response["types"]["exception_info"] == "NoneType"
    assert finished["output_length"] == len(resp.body)
    assert finished["input_length"] == 0
    # request_data lives until request_finished: what the application wrote is there
    assert finished["request_data_app_wrote"] == rid


def test_request_finished_counts_the_request_body(srv):
    need(srv, "subscribe_events")
    r = api(srv, "/api/post", body=b"x" * 1234)
    assert r["length"] == 1234
    finished = events_for(srv, r["request_id"])[-1]
    assert finished["name"] == "request_finished"
    assert finished["input_length"] == 1234
    assert finished["input_reads"] >= 1


def test_exception_before_start_response(srv):
    need(srv, "subscribe_events")
    tag = "tag=" + uuid.uuid4().hex
    r = srv.get("/api/boom?" + tag)
    assert r.status == 500
    evs = events_for(srv, rid_of(srv, tag))
    assert names(evs) == ["request_started", "request_exception", "request_finished"], evs
    exc = evs[1]
    check_event(exc, REQUEST_EXCEPTION_KEYS)
    assert exc["exception_info"] == {"container": "tuple", "len": 3, "type": "ValueError",
                                     "value": "api-boom", "traceback": "traceback"}
    assert exc["request_data_is_current"] is True
    assert evs[2]["output_length"] == 0


def test_exception_while_iterating_the_response(srv):
    need(srv, "subscribe_events")
    tag = "tag=" + uuid.uuid4().hex
    r = srv.get("/api/boom-late?" + tag)
    assert r.status == 200 and r.body.startswith(b"partial")
    evs = events_for(srv, rid_of(srv, tag))
    assert names(evs) == ["request_started", "response_started", "request_exception",
                          "request_finished"], evs
    assert evs[2]["exception_info"]["type"] == "KeyError"


def test_exc_info_given_to_start_response(srv):
    need(srv, "subscribe_events")
    tag = "tag=" + uuid.uuid4().hex
    r = srv.get("/api/exc-info?" + tag)
    assert r.status == 503 and r.body == b"handled"
    evs = events_for(srv, rid_of(srv, tag))
    assert names(evs) == ["request_started", "response_started", "request_finished"], evs
    assert evs[1]["response_status"] == "503 Service Unavailable"
    assert evs[1]["exception_info"] == {"container": "tuple", "len": 3, "type": "LookupError",
                                        "value": "api-handled", "traceback": "traceback"}


def test_subscriber_returning_application_object_wraps_the_application(srv):
    need(srv, "subscribe_events", "request_data", "active_requests")
    r = srv.get("/api/wrapped")
    assert r.status == 200, r
    assert r.header("X-Api-Wrapped") == "1", r.headers
    out = r.json()
    # the returned dict was merged into the event the later subscribers got ...
    assert out["contents"]["observer_saw_marker"] == 1
    assert out["contents"]["observer_app_is_application"] is False
    # ... and not into request_data
    assert "merged_marker" not in out["contents"]
    evs = events_for(srv, out["request_id"])
    # each event is a fresh dict: the merge did not carry over
    assert [e["has_merged_marker"] for e in evs] == [False, False, False]
    assert ["X-Api-Wrapped", "1"] in evs[1]["response_headers"]


def test_subscriber_returning_something_else_is_ignored(srv):
    need(srv, "subscribe_events", "request_data", "active_requests")
    r = api(srv, "/api/return-junk")
    assert r["contents"]["observer_ran"] is True
    assert r["contents"]["observer_app_is_application"] is True


def test_subscriber_exception_is_logged_and_the_rest_still_run(srv):
    need(srv, "subscribe_events", "request_data", "active_requests")
    mark = srv.log_mark()
    r = api(srv, "/api/subscriber-raises")
    assert r["contents"]["observer_ran"] is True
    assert r["contents"]["seeded"] == r["request_id"]
    srv.wait_for_log("RuntimeError: api-subscriber-boom", since=mark)
    assert names(events_for(srv, r["request_id"])) == [
        "request_started", "response_started", "request_finished"]


def test_subscriptions_belong_to_their_interpreter(srv):
    need(srv, "subscribe_events", "request_data", "active_requests")
    api_group = api(srv, "/api/attrs")["now"]["application_group"]["value"]
    r = api(srv, "/other/request-data")
    evs = events_for(srv, r["request_id"])
    assert names(evs) == ["request_started", "response_started", "request_finished"]
    # only the /other interpreter's subscribers saw this request
    groups = {e["application_group"] for e in evs}
    assert len(groups) == 1 and api_group not in groups, groups
    assert evs[0]["script_name"] == "/other"


def test_subscribe_functions_return_the_callback(request, srv):
    """6.x: subscribe_events / subscribe_shutdown return the callback (usable as decorators);
    4.9.4 returns None."""
    from_6x(request, srv, "subscribe_* return None in 4.x")
    need(srv, "subscribe_events", "subscribe_shutdown")
    r = api(srv, "/api/attrs")
    assert r["import"].get("subscribe_events_returned") == "callback", r["import"]
    assert r["import"].get("subscribe_shutdown_returned") == "callback", r["import"]


# --------------------------------------------------------------------------
# shutdown


def _serve_some(srv, n=8) -> set:
    return {api(srv, "/api/pid")["pid"] for _ in range(n)}


def _check_shutdown(srv, pids: set, group: str):
    for pid in pids:
        calls = wait_files(srv, f"shutdown-{pid}-*.json", timeout=20)
        assert len(calls) == 1, (pid, calls, sorted(os.listdir(srv.var)))
        call = calls[0]
        assert call["args"] == ["process_stopping"]
        assert set(call["kwargs"]) >= {"shutdown_reason"}, call
        assert isinstance(call["kwargs"]["shutdown_reason"], str)
        assert call["process_group"] == group
        events = wait_files(srv, f"event-process_stopping-{pid}-*.json", timeout=5)
        assert len(events) == 1, events
        # subscribe_events callbacks got the same event, before the shutdown callbacks
        assert events[0]["values"]["shutdown_reason"] == call["kwargs"]["shutdown_reason"]
        shutdown_seq = int(next(iter(srv.var.glob(f"shutdown-{pid}-*.json"))).stem.rsplit(
            "-", 1)[1])
        assert events[0]["seq"] < shutdown_seq


@pytest.mark.parametrize("mode", MODES)
def test_shutdown_callbacks_run_on_graceful_restart(make_server, mode):
    srv = make_server(in_mode("WSGIScriptAlias /api {apps}/api_probe.wsgi\n", mode),
                      name=f"api-graceful-{mode}")
    need(srv, "subscribe_events", "subscribe_shutdown")
    pids = _serve_some(srv)
    assert not list(srv.var.glob("shutdown-*"))
    srv.graceful()
    _check_shutdown(srv, pids, "" if mode == "embedded" else "suite")


@pytest.mark.parametrize("mode", MODES)
def test_shutdown_callbacks_run_on_stop(make_server, mode):
    srv = make_server(in_mode("WSGIScriptAlias /api {apps}/api_probe.wsgi\n", mode),
                      name=f"api-stop-{mode}", keep_root=True)
    try:
        need(srv, "subscribe_events", "subscribe_shutdown")
        pids = _serve_some(srv)
        srv.stop()
        _check_shutdown(srv, pids, "" if mode == "embedded" else "suite")
    finally:
        shutil.rmtree(srv.root, ignore_errors=True)


# --------------------------------------------------------------------------
# metrics


def test_process_metrics(srv):
    need(srv, "process_metrics")
    r = api(srv, "/api/metrics/process")
    res = r["result"]
    assert res["type"] == "dict", res
    check_keys(res["shape"], PROCESS_METRICS_KEYS, "process_metrics()")
    v = res["value"]
    assert v["pid"] == r["pid"]
    assert v["active_requests"] >= 1  # this one
    assert v["request_count"] >= 0 and v["request_threads"] >= 1
    assert v["current_time"] >= v["restart_time"] > 0
    assert all(set(t) == {"thread_id", "request_count"} for t in v["threads"]), v["threads"]
    assert r["thread_id"] in [t["thread_id"] for t in v["threads"]]


def test_request_metrics(srv):
    """The first call in a process starts the sample (4.9.4: returns {}); each later call
    reports the interval since the previous one."""
    need(srv, "request_metrics")
    with srv.keepalive() as conn:
        first = api(srv, "/api/metrics/request", conn)
        api(srv, "/api/pid", conn)
        second = api(srv, "/api/metrics/request", conn)
        attrs = api(srv, "/api/attrs", conn)
    assert first["pid"] == second["pid"]
    assert first["result"]["type"] == "dict"
    if first["call"] == 1 and "start_recording_metrics" not in attrs["now"]:
        assert first["result"]["value"] == {}
    res = second["result"]
    assert res["type"] == "dict", res
    check_keys(res["shape"], REQUEST_METRICS_KEYS, "request_metrics()")
    v = res["value"]
    assert v["pid"] == second["pid"]
    assert v["request_count"] >= 2  # the first call's request and /pid finished since
    assert v["request_threads_maximum"] == attrs["now"]["threads_per_process"]["value"]
    assert len(v["request_threads_buckets"]) == v["request_threads_maximum"]
    for k in ("server_time_buckets", "queue_time_buckets", "daemon_time_buckets",
              "application_time_buckets"):
        assert all(isinstance(x, int) for x in v[k]), (k, v[k])
        if not modwsgi6(srv):  # 4.9.4: 16 buckets, 5 ms doubling (6.x: 65)
            assert len(v[k]) == 16, (k, v[k])
    if srv.mode == "embedded":
        assert v["queue_time"] is None and v["daemon_time"] is None
    else:
        assert isinstance(v["queue_time"], float) and isinstance(v["daemon_time"], float)


def test_server_metrics_default_off(request, srv):
    if srv.mode == "embedded":
        modwsgi4_bug(request, srv, "WSGIServerMetrics unset is -1, which 4.9.4 tests as "
                     "true: the scoreboard is returned in embedded mode")
    need(srv, "server_metrics")
    r = api(srv, "/api/metrics/server")
    assert r["result"]["type"] == "NoneType", r["result"]["shape"]


SERVER_METRICS_CONFIG = """
WSGIServerMetrics On
WSGISocketPrefix {root}/run/wsgi
WSGIDaemonProcess on threads=2 server-metrics=On
WSGIDaemonProcess off threads=2
WSGIScriptAlias /emb {apps}/api_probe.wsgi
WSGIScriptAlias /on {apps}/api_probe.wsgi process-group=on
WSGIScriptAlias /off {apps}/api_probe.wsgi process-group=off
"""


def test_server_metrics_when_enabled(make_server):
    """WSGIServerMetrics On enables it in embedded mode, server-metrics=On in a daemon
    group (WSGIServerMetrics does not reach daemon groups)."""
    srv = make_server(SERVER_METRICS_CONFIG, name="api-server-metrics")
    need(srv, "server_metrics", prefix="/emb")
    assert api(srv, "/off/metrics/server")["result"]["type"] == "NoneType"
    paths = ("/emb", "/on")
    if rwsgi(srv):
        # rwsgi keeps Apache's scoreboard (every virtual host's clients and requests) out of
        # daemon processes: another tenant's traffic is not theirs to see (README, Security)
        assert api(srv, "/on/metrics/server")["result"]["type"] == "NoneType"
        paths = ("/emb",)
    for path in paths:
        r = api(srv, path + "/metrics/server")
        res = r["result"]
        assert res["type"] == "dict", (path, res)
        check_keys(res["shape"], SERVER_METRICS_KEYS, "server_metrics()")
        v = res["value"]
        assert v["server_limit"] == 16 and v["thread_limit"] == 8, (path, v["server_limit"])
        assert len(v["processes"]) == v["server_limit"]
        for p in v["processes"]:
            check_keys({k: type(x).__name__ for k, x in p.items()}, SCOREBOARD_PROCESS_KEYS,
                       "server_metrics()['processes'][i]")
            assert len(p["workers"]) == v["thread_limit"]
            for w in p["workers"]:
                check_keys({k: type(x).__name__ for k, x in w.items()},
                           SCOREBOARD_WORKER_KEYS, "worker")
                assert len(w["status"]) == 1 and w["status"] in "._SRWKLDCGI", w["status"]
        busy = [p["pid"] for p in v["processes"] for w in p["workers"] if w["status"] == "W"]
        assert busy, "no worker is writing this very response"
        if path == "/emb":
            assert r["pid"] in busy  # the Apache child running the application


def test_server_metrics_explicitly_off(make_server):
    srv = make_server("WSGIServerMetrics Off\nWSGIScriptAlias /api {apps}/api_probe.wsgi\n",
                      name="api-server-metrics-off")
    need(srv, "server_metrics")
    assert api(srv, "/api/metrics/server")["result"]["type"] == "NoneType"


# --------------------------------------------------------------------------
# 6.x: LogHandler, subscribe_signals


def test_log_handler(request, srv):
    """mod_wsgi.LogHandler: a logging.Handler writing to Apache's error log at the record's
    level (DEBUG/INFO/WARNING/ERROR/CRITICAL -> debug/info/warn/error/crit), filtered by
    LogLevel (the harness: info), one log entry per line; inside a request the entry names
    the client."""
    from_6x(request, srv, "no LogHandler in 4.x")
    need(srv, "LogHandler")
    marker = "LH" + uuid.uuid4().hex[:10]
    mark = srv.log_mark()
    r = api(srv, f"/api/log?marker={marker}&bg=1")
    assert r["handler_is_logging_handler"] is True
    srv.wait_for_log(f"{marker} from thread", since=mark)
    lines = [ln for ln in srv.error_log_since(mark).splitlines() if marker in ln]
    client = "client" if srv.mode == "embedded" else "(?:client|remote)"

    def find(level, text, in_request=True):
        pat = re.compile(r"\[wsgi:%s\] .*%s" % (level, re.escape(f"{marker} {text}")))
        hits = [ln for ln in lines if pat.search(ln)]
        assert len(hits) == 1, (level, text, lines)
        if in_request:
            assert re.search(r"\[%s 127\.0\.0\.1:\d+\]" % client, hits[0]), hits[0]
        return hits[0]

    assert not [ln for ln in lines if f"{marker} debug" in ln], lines
    find("info", "info")
    find("warn", "warning")
    find("error", "error")
    # rwsgi's daemons log at most at error level (a daemon process cannot raise alerts the
    # Apache side would treat as its own crit/alert lines; README, Differences)
    find("crit" if srv.mode == "embedded" or not rwsgi(srv) else "error", "critical")
    find("warn", "line one")
    find("warn", "line two")
    find("error", "from thread", in_request=False)


def test_subscribe_signals_is_inert_in_embedded_mode(request, srv):
    """6.x: subscribe_signals exists everywhere and returns the callback; in embedded mode
    it is never called (Apache owns the signals) and an info-level message says so."""
    if srv.mode != "embedded":
        pytest.skip("the daemon case is test_subscribe_signals_in_a_daemon")
    from_6x(request, srv, "no subscribe_signals in 4.x")
    need(srv, "subscribe_signals")
    r = api(srv, "/api/attrs")
    assert r["import"].get("subscribe_signals_returned") == "callback", r["import"]
    assert not list(srv.var.glob("signal-*"))


def test_subscribe_signals_in_a_daemon(request, make_server):
    """6.x: a daemon process that gets SIGHUP or SIGUSR2 keeps running and calls the
    subscribe_signals callbacks (and the subscribe_events ones) with
    ('process_signal', signame='SIGHUP'|'SIGUSR2', signum=int), on a thread of its own."""
    srv = make_server(in_mode("WSGIScriptAlias /api {apps}/api_probe.wsgi\n", "daemon"),
                      name="api-signals")
    from_6x(request, srv, "no subscribe_signals in 4.x")
    # checked before any signal is sent: without the feature SIGHUP would end the daemon
    need(srv, "subscribe_signals")
    r = api(srv, "/api/attrs")
    assert r["import"].get("subscribe_signals_returned") == "callback"
    pid = r["pid"]
    for sig in (signal.SIGUSR2, signal.SIGHUP):
        os.kill(pid, sig)
        calls = wait_files(srv, f"signal-{pid}-{sig.name}-*.json", timeout=10)
        assert calls, f"no subscribe_signals call for {sig.name}"
        for c in calls:
            assert c["name"] == "process_signal"
            assert c["kwargs"] == {"signame": sig.name, "signum": int(sig)}, c
    events = [e for e in wait_files(srv, f"event-process_signal-{pid}-*.json", count=2)]
    assert {e["values"]["signame"] for e in events} == {"SIGUSR2", "SIGHUP"}
    assert api(srv, "/api/pid")["pid"] == pid  # the same process still serves
