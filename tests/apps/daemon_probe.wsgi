"""Process-level probes for daemon-mode tests: ?t=id (pid, uids, groups), ?t=exit (the
process exits mid-request), ?t=segv / ?t=memory / ?t=busy (it dies of a crash, of its
memory-limit, uses CPU), ?t=sleep&s=N, ?t=bigresp_noread (a large response without reading
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
    if t == "hang_at_exit":
        # an atexit handler that never finishes (shutdown-timeout must end the process)
        import atexit
        atexit.register(time.sleep, 3600)
    if t == "env":
        import ctypes
        import locale
        import resource
        import socket
        import sys
        import threading

        def stack_size():
            libc = ctypes.CDLL(None)
            attr = ctypes.create_string_buffer(128)
            size = ctypes.c_size_t()
            libc.pthread_getattr_np(ctypes.c_ulong(threading.get_ident()), attr)
            libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
            libc.pthread_attr_destroy(attr)
            return size.value

        def socket_buffers():
            # the daemon's connections to Apache children: unix sockets among our fds
            out = set()
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if not os.readlink("/proc/self/fd/" + fd).startswith("socket:"):
                        continue
                    s = socket.socket(fileno=os.dup(int(fd)))
                except OSError:
                    continue
                try:
                    if s.family == socket.AF_UNIX and s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0:
                        out.add((s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                                 s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)))
                finally:
                    s.close()
            return sorted(out)

        mask = os.umask(0)
        os.umask(mask)
        body = json.dumps({
            "pid": os.getpid(), "cwd": os.getcwd(), "prefix": sys.prefix,
            "eggs": os.environ.get("PYTHON_EGG_CACHE"), "lang": os.environ.get("LANG"),
            "lc_all": os.environ.get("LC_ALL"), "ctype": locale.setlocale(locale.LC_CTYPE),
            "umask": mask, "priority": os.getpriority(os.PRIO_PROCESS, 0),
            "rlimit_data": resource.getrlimit(resource.RLIMIT_DATA),
            "rlimit_as": resource.getrlimit(resource.RLIMIT_AS),
            "rlimit_cpu": resource.getrlimit(resource.RLIMIT_CPU),
            "stack_size": stack_size(), "socket_buffers": socket_buffers(),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if t == "exit":
        os._exit(3)
    if t == "segv":
        import ctypes
        ctypes.string_at(0)
    if t == "memory":
        # fill memory up to memory-limit (RLIMIT_DATA), then die of it as C code does
        hoard = []
        try:
            while True:
                hoard.append(b"\x01" * (8 << 20))
        except MemoryError:
            os.abort()
    if t == "busy":
        deadline = time.monotonic() + float(q.get("s", "30"))
        while time.monotonic() < deadline:
            pass
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
