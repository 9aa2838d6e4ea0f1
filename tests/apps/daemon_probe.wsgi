"""Process-level probes for daemon-mode tests: ?t=id (pid, uids, groups), ?t=exit (the
process exits mid-request), ?t=sleep&s=N, ?t=bigresp_noread (a large response without reading
the request body), ?t=root (try to regain root)."""
import json
import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    t = q.get("t", "id")
    if t == "module":
        # applications import mod_wsgi (as they do under mod_wsgi) for their process details
        import mod_wsgi
        body = json.dumps({"process_group": mod_wsgi.process_group,
                           "application_group": mod_wsgi.application_group,
                           "version": list(mod_wsgi.version)}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if t == "pysleep":
        # sleeps in Python-level steps: an async exception (interrupt-timeout) lands
        for _ in range(int(float(q.get("s", "10")) * 20)):
            time.sleep(0.05)
    if t == "csleep":
        # one long C call with the GIL released: an async exception cannot land until it ends
        import ctypes
        ctypes.CDLL(None).sleep(int(q.get("s", "10")))
    if t == "extras":
        import builtins
        try:
            import rwsgi_extra_mod
            extra = rwsgi_extra_mod.__file__
        except ImportError as e:
            extra = "ImportError: %s" % e
        body = json.dumps({"pid": os.getpid(),
                           "preloaded_pid": getattr(builtins, "rwsgi_preloaded_pid", None),
                           "extra": extra}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if t == "exit":
        os._exit(3)
    if t == "gil_hold":
        # libc sleep() through ctypes.PyDLL keeps the GIL for the whole call: a wedged process
        import ctypes
        ctypes.PyDLL(None).sleep(int(q.get("s", "30")))
    if t == "sleep":
        time.sleep(float(q.get("s", "1")))
    if t == "bigresp_noread":
        n = int(q.get("n", str(8 * 1024 * 1024)))
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
        return [b"x" * n]
    if t == "root":
        try:
            os.setuid(0)
            result = "regained root"
        except OSError as e:
            result = "refused: %s" % e.strerror
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [result.encode()]
    body = json.dumps({
        "pid": os.getpid(),
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
        "groups": sorted(os.getgroups()),
        "cwd": os.getcwd(),
        "process_group": environ.get("mod_wsgi.process_group"),
        "application_group": environ.get("mod_wsgi.application_group"),
        "multiprocess": environ.get("wsgi.multiprocess"),
        "multithread": environ.get("wsgi.multithread"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
