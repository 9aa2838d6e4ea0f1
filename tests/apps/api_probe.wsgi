"""Probe of the `mod_wsgi` Python module API (tests/test_modwsgi_api.py).

At import it snapshots the module, tries request_data(), and subscribes:

  recorder      subscribe_events: records every event it sees (name, keyword names and value
                types, request_id, plus the values an application uses) in EVENTS and as a
                JSON line in {var}/events-<pid>.jsonl; on request_started it seeds
                request_data()["seeded"] and environ["api.subscriber"]; process_stopping (and
                any process_signal) is also written to {var}/event-<name>-<pid>-<n>.json
  installer     subscribe_events: on request_started for /wrapped returns
                {"application_object": <wrapper adding X-Api-Wrapped>, "merged_marker": 1};
                for /return-junk returns a string (must be ignored)
  raiser        subscribe_events: raises RuntimeError("api-subscriber-boom") on
                request_started for /subscriber-raises
  observer      subscribe_events: on request_started notes in request_data what it saw
                (merged_marker, whether application_object is still the application)
  on_shutdown   subscribe_shutdown: writes {var}/shutdown-<pid>-<n>.json
  on_signal     subscribe_signals (6.x, if present): writes {var}/signal-<pid>-<signame>-<n>.json

PATH_INFO: /attrs, /request-data, /active, /events?id=RID, /boom, /boom-late, /exc-info,
/post, /bg, /metrics/process, /metrics/request, /metrics/server, /hold?key=K,
/log?marker=M[&bg=1], /wrapped, /return-junk, /subscriber-raises, /pid. Everything answers
JSON; a name the module lacks gives 501 {"error": "AttributeError", "message": ...}.
The module state directory {var} is found as ../var next to this script's directory.
"""
import itertools
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

import mod_wsgi

VAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var")

NAMES = ("process_group", "application_group", "maximum_processes", "threads_per_process",
         "version", "FileWrapper", "request_data", "active_requests", "subscribe_events",
         "subscribe_shutdown", "process_metrics", "request_metrics", "server_metrics",
         "event_callbacks", "shutdown_callbacks", "LogHandler", "subscribe_signals",
         "signal_callbacks", "start_recording_metrics", "RequestTimeout")

_lock = threading.Lock()
_seq = itertools.count(1)
EVENTS = []
IMPORT = {}


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, type):
        return "<type %s>" % v.__name__
    return "<%s>" % type(v).__name__


def _attrs():
    out = {}
    for name in NAMES:
        if not hasattr(mod_wsgi, name):
            continue
        v = getattr(mod_wsgi, name)
        info = {"type": type(v).__name__, "callable": callable(v)}
        if isinstance(v, (str, int, tuple)):
            info["value"] = _jsonable(v)
        if isinstance(v, type):
            info["is_type"] = True
            info["mro"] = [c.__module__ + "." + c.__name__ for c in v.__mro__]
        out[name] = info
    return out


def _write(name, data):
    path = os.path.join(VAR, name)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.rename(path + ".tmp", path)


def _exc(ei):
    if ei is None:
        return None
    return {"container": type(ei).__name__, "len": len(ei),
            "type": getattr(ei[0], "__name__", repr(ei[0])), "value": str(ei[1]),
            "traceback": type(ei[2]).__name__}


def _current_request_data():
    try:
        return mod_wsgi.request_data()
    except Exception:
        return None


# --------------------------------------------------------------------------
# import-time snapshot

IMPORT["pid"] = os.getpid()
IMPORT["attrs"] = _attrs()
try:
    _d = mod_wsgi.request_data()
    IMPORT["request_data"] = {"ok": True, "type": type(_d).__name__, "keys": sorted(_d)}
except Exception as e:  # noqa: BLE001
    IMPORT["request_data"] = {"ok": False, "error": type(e).__name__, "message": str(e)}
IMPORT["active_requests"] = sorted(getattr(mod_wsgi, "active_requests", {}) or {})


# --------------------------------------------------------------------------
# subscribers


def recorder(name, **event):
    rec = {
        "name": name,
        "keys": sorted(event),
        "types": {k: type(v).__name__ for k, v in event.items()},
        "request_id": event.get("request_id"),
        "pid": os.getpid(),
        "application_group": mod_wsgi.application_group,
        "thread": threading.current_thread().name,
        "seq": next(_seq),
    }
    rec["has_merged_marker"] = "merged_marker" in event
    rd = event.get("request_data")
    if "request_data" in event:
        cur = _current_request_data()
        rec["request_data_is_current"] = cur is not None and rd is cur
    if name == "request_started":
        env = event.get("request_environ") or {}
        rec["path"] = env.get("PATH_INFO")
        rec["script_name"] = env.get("SCRIPT_NAME")
        rec["query"] = env.get("QUERY_STRING")
        env["api.subscriber"] = event.get("request_id")
        rec["environ_request_id"] = env.get("mod_wsgi.request_id")
        rec["environ_thread_id"] = env.get("mod_wsgi.thread_id")
        rec["thread_id"] = event.get("thread_id")
        rec["application_object_is_application"] = event.get("application_object") is application
        if isinstance(rd, dict):
            rd["seeded"] = event.get("request_id")
            rd["_environ_id"] = id(env)
    elif name == "response_started":
        rec["response_status"] = event.get("response_status")
        rec["response_headers"] = _jsonable(event.get("response_headers"))
        rec["response_headers_type"] = type(event.get("response_headers")).__name__
        rec["exception_info"] = _exc(event.get("exception_info"))
    elif name == "request_finished":
        for k in ("input_reads", "input_length", "output_length", "output_writes"):
            rec[k] = event.get(k)
        if isinstance(rd, dict):
            rec["request_data_keys"] = sorted(k for k in rd if not k.startswith("_"))
            rec["request_data_app_wrote"] = rd.get("app_wrote")
    elif name == "request_exception":
        rec["exception_info"] = _exc(event.get("exception_info"))
    elif name in ("process_stopping", "process_signal"):
        rec["values"] = _jsonable({k: v for k, v in event.items()})
        rec["process_group"] = mod_wsgi.process_group
        rec["application_group"] = mod_wsgi.application_group
        _write("event-%s-%d-%d.json" % (name, os.getpid(), rec["seq"]), rec)
    line = json.dumps(rec) + "\n"
    with _lock:
        EVENTS.append(rec)
        del EVENTS[:-400]
        with open(os.path.join(VAR, "events-%d.jsonl" % os.getpid()), "a") as f:
            f.write(line)


def _wrap(app):
    def wrapper(environ, start_response):
        def sr(status, headers, exc_info=None):
            return start_response(status, list(headers) + [("X-Api-Wrapped", "1")], exc_info)
        return app(environ, sr)
    return wrapper


def installer(name, **event):
    if name != "request_started":
        return None
    path = (event.get("request_environ") or {}).get("PATH_INFO")
    if path == "/wrapped":
        return {"application_object": _wrap(event["application_object"]), "merged_marker": 1}
    if path == "/return-junk":
        return "not a dict"
    return None


def raiser(name, **event):
    if name == "request_started" and \
            (event.get("request_environ") or {}).get("PATH_INFO") == "/subscriber-raises":
        raise RuntimeError("api-subscriber-boom")


def observer(name, **event):
    if name != "request_started":
        return
    rd = event.get("request_data")
    if isinstance(rd, dict):
        rd["observer_ran"] = True
        rd["observer_saw_marker"] = event.get("merged_marker")
        rd["observer_app_is_application"] = event.get("application_object") is application


def on_shutdown(*args, **kwargs):
    _write("shutdown-%d-%d.json" % (os.getpid(), next(_seq)), {
        "args": _jsonable(list(args)),
        "kwargs": _jsonable(kwargs),
        "pid": os.getpid(),
        "process_group": mod_wsgi.process_group,
        "application_group": mod_wsgi.application_group,
        "thread": threading.current_thread().name,
    })


def on_signal(name, **kwargs):
    _write("signal-%d-%s-%d.json" % (os.getpid(), kwargs.get("signame"), next(_seq)), {
        "name": name, "kwargs": _jsonable(kwargs), "pid": os.getpid(),
        "thread": threading.current_thread().name,
    })


# Every subscription is guarded so that a module lacking a name still serves the other
# probes (the missing name is listed in IMPORT["missing"]).
IMPORT["missing"] = [n for n in NAMES[:15] if not hasattr(mod_wsgi, n)]
if hasattr(mod_wsgi, "subscribe_events"):
    _r = mod_wsgi.subscribe_events(recorder)
    IMPORT["subscribe_events_returned"] = "callback" if _r is recorder else _jsonable(_r)
    mod_wsgi.subscribe_events(installer)
    mod_wsgi.subscribe_events(raiser)
    mod_wsgi.subscribe_events(observer)
if hasattr(mod_wsgi, "subscribe_shutdown"):
    _r = mod_wsgi.subscribe_shutdown(on_shutdown)
    IMPORT["subscribe_shutdown_returned"] = "callback" if _r is on_shutdown else _jsonable(_r)
if hasattr(mod_wsgi, "subscribe_signals"):
    _r = mod_wsgi.subscribe_signals(on_signal)
    IMPORT["subscribe_signals_returned"] = "callback" if _r is on_signal else _jsonable(_r)
if hasattr(mod_wsgi, "start_recording_metrics"):  # 6.x: metrics are opt-in
    mod_wsgi.start_recording_metrics()
CALLS = {"request_metrics": 0}  # request_metrics() calls in this interpreter


# --------------------------------------------------------------------------
# helpers for the endpoints


def _shape(v, depth=0):
    """Type skeleton of a metrics value: dict -> {key: shape}, list -> [len, shape of item 0]."""
    if isinstance(v, dict):
        return {str(k): _shape(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return ["list", len(v), _shape(v[0], depth + 1) if v else None]
    return type(v).__name__


def _metrics(fn):
    try:
        v = fn()
    except Exception as e:  # noqa: BLE001
        return {"error": type(e).__name__, "message": str(e)}
    return {"type": type(v).__name__, "shape": _shape(v) if v is not None else None,
            "value": _jsonable(v)}


# --------------------------------------------------------------------------
# the application


def application(environ, start_response):
    try:
        return _dispatch(environ, start_response)
    except AttributeError as e:
        # a name this module lacks: say which (the tests show this message)
        if "mod_wsgi" not in str(e):
            raise
        body = json.dumps({"error": "AttributeError", "message": str(e)}).encode()
        start_response("501 Not Implemented", [("Content-Type", "application/json")])
        return [body]


def _dispatch(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    rid = environ.get("mod_wsgi.request_id")
    out = {"pid": os.getpid(), "request_id": rid, "path": path}
    status = "200 OK"
    headers = [("Content-Type", "application/json")]

    if path == "/raise_request_timeout":
        # what interrupt-timeout raises in an overdue thread, raised by the application itself
        raise mod_wsgi.RequestTimeout("raised by the application")

    if path == "/attrs":
        out["import"] = IMPORT
        out["now"] = _attrs()
        out["environ"] = {k: _jsonable(environ.get(k)) for k in (
            "mod_wsgi.process_group", "mod_wsgi.application_group", "mod_wsgi.request_id",
            "mod_wsgi.thread_id", "wsgi.multithread", "wsgi.multiprocess")}
        out["file_wrapper_is_FileWrapper"] = environ.get("wsgi.file_wrapper") is \
            getattr(mod_wsgi, "FileWrapper", None)
        out["event_callbacks"] = [getattr(c, "__name__", "?") for c in
                                  getattr(mod_wsgi, "event_callbacks", [])]
        out["shutdown_callbacks"] = [getattr(c, "__name__", "?") for c in
                                     getattr(mod_wsgi, "shutdown_callbacks", [])]
    elif path in ("/request-data", "/wrapped", "/return-junk", "/subscriber-raises"):
        rd = mod_wsgi.request_data()
        out["type"] = type(rd).__name__
        out["same_object_twice"] = rd is mod_wsgi.request_data()
        ar = mod_wsgi.active_requests
        out["is_active_requests_value"] = rid in ar and ar[rid] is rd
        out["environ_is_event_environ"] = rd.get("_environ_id") == id(environ)
        out["environ_from_subscriber"] = environ.get("api.subscriber")
        out["contents"] = {k: _jsonable(v) for k, v in rd.items() if not k.startswith("_")}
        rd["app_wrote"] = rid
        out["data_id"] = id(rd)
    elif path == "/active":
        ar = mod_wsgi.active_requests
        out["type"] = type(ar).__name__
        out["ids"] = sorted(ar)
        out["key_types"] = sorted({type(k).__name__ for k in ar})
        out["value_types"] = sorted({type(v).__name__ for v in ar.values()})
        out["own"] = rid in ar
        out["own_is_request_data"] = rid in ar and ar[rid] is mod_wsgi.request_data()
        out["values"] = {k: sorted(x for x in v if not x.startswith("_")) for k, v in ar.items()}
    elif path == "/events":
        want = q.get("id")
        with _lock:
            out["events"] = [e for e in EVENTS if want is None or e["request_id"] == want]
    elif path == "/boom":
        raise ValueError("api-boom")
    elif path == "/boom-late":
        start_response(status, [("Content-Type", "text/plain")])

        def gen():
            yield b"partial"
            raise KeyError("api-boom-late")
        return gen()
    elif path == "/exc-info":
        try:
            raise LookupError("api-handled")
        except LookupError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"handled"]
    elif path == "/post":
        body = environ["wsgi.input"].read()
        out["length"] = len(body)
    elif path == "/bg":
        res = {}

        def bg():
            try:
                mod_wsgi.request_data()
                res["ok"] = True
            except Exception as e:  # noqa: BLE001
                res.update(ok=False, error=type(e).__name__, message=str(e))
        t = threading.Thread(target=bg)
        t.start()
        t.join(10)
        out["background"] = res
    elif path == "/metrics/process":
        out["result"] = _metrics(mod_wsgi.process_metrics)
        out["thread_id"] = environ.get("mod_wsgi.thread_id")
    elif path == "/metrics/request":
        with _lock:
            CALLS["request_metrics"] += 1
            out["call"] = CALLS["request_metrics"]
        out["result"] = _metrics(mod_wsgi.request_metrics)
    elif path == "/metrics/server":
        out["result"] = _metrics(mod_wsgi.server_metrics)
    elif path == "/hold":
        key = q.get("key", "x")
        mod_wsgi.request_data()["hold_key"] = key
        _write("held-%s" % key, {"request_id": rid})
        deadline = time.monotonic() + 15
        while not os.path.exists(os.path.join(VAR, "release-%s" % key)) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        out["released"] = os.path.exists(os.path.join(VAR, "release-%s" % key))
    elif path == "/log":
        import logging
        marker = q.get("marker", "m")
        logger = logging.getLogger("api_probe." + marker)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        handler = mod_wsgi.LogHandler()
        logger.addHandler(handler)
        try:
            out["handler_is_logging_handler"] = isinstance(handler, logging.Handler)
            logger.debug("%s debug", marker)
            logger.info("%s info", marker)
            logger.warning("%s warning", marker)
            logger.error("%s error", marker)
            logger.critical("%s critical", marker)
            logger.warning("%s line one\n%s line two", marker, marker)
            if q.get("bg"):
                t = threading.Thread(target=logger.error, args=("%s from thread", marker))
                t.start()
                t.join(10)
        finally:
            logger.removeHandler(handler)
    elif path == "/pid":
        pass
    else:
        status = "404 Not Found"

    body = json.dumps(out).encode()
    start_response(status, headers)
    return [body]
