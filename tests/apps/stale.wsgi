"""Keeps request-bound objects past their request, as real applications do by accident: a
logging.StreamHandler over wsgi.errors set up on the first request, a background thread that
reports through it, a kept wsgi.input, start_response and write. rwsgi must answer every later
use with mod_wsgi's RuntimeError, never touch the ended request (a segfault of the Apache child
in embedded mode) nor its connection (a hang of the next request in daemon mode)."""
import json
import logging
import threading
import time

kept = {}
thread_saw = []
lock = threading.Lock()


def _outcome(f):
    try:
        f()
        return "ok"
    except Exception as e:  # the exception type and message are the contract
        return "%s: %s" % (type(e).__name__, e)


def _reporter():
    log = logging.getLogger("stale")
    while True:
        time.sleep(0.02)
        errors = kept["errors"]
        seen = _outcome(lambda: errors.write("background line\n"))
        # what logging does with a handler over the kept stream (must not crash the process)
        log.warning("through a StreamHandler")
        with lock:
            thread_saw.append(seen)
            if len(thread_saw) > 200:
                del thread_saw[:100]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/keep":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        first = "errors" not in kept
        kept.update(
            errors=environ["wsgi.errors"],
            input=environ["wsgi.input"],
            start_response=start_response,
            write=write,
        )
        if first:
            handler = logging.StreamHandler(environ["wsgi.errors"])
            log = logging.getLogger("stale")
            log.addHandler(handler)
            log.propagate = False
            threading.Thread(target=_reporter, daemon=True).start()
        return [b"kept"]
    if path == "/use":
        k = kept
        out = {
            "errors": _outcome(lambda: k["errors"].write("later line\n")),
            "errors_flush": _outcome(lambda: (k["errors"].write("x"), k["errors"].flush())),
            "input": _outcome(lambda: k["input"].read(10)),
            "readline": _outcome(lambda: k["input"].readline()),
            "start_response": _outcome(lambda: k["start_response"]("200 OK", [])),
            "write": _outcome(lambda: k["write"](b"late")),
        }
        with lock:
            out["thread"] = sorted(set(thread_saw))
        body = json.dumps(out).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]
