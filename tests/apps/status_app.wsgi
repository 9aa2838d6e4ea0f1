"""For tests/test_status.py: ?code=N answers N; ?t=sleep&s=N sleeps in small steps (so a
Python stack shows where); ?t=scribble plays a hostile application that found its status
board (fd 5 in a daemon process): it tries to resize it and writes garbage and markup all
over it."""
import json
import mmap
import os
import time
from urllib.parse import parse_qs


def _scribble():
    out = {}
    try:
        os.ftruncate(5, 0)
        out["truncate"] = "allowed"
    except OSError as e:
        out["truncate"] = "refused: %s" % e.strerror
    size = os.fstat(5).st_size
    m = mmap.mmap(5, size)
    junk = b"<script>alert(1)</script>\xff\xfe" + os.urandom(64)
    for off in range(0, size - len(junk), 61):
        m[off:off + len(junk)] = junk
    m.close()
    out["size"] = size
    return out


def application(environ, start_response):
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    t = q.get("t", "")
    if t == "sleep":
        for _ in range(int(float(q.get("s", "1")) * 20)):
            time.sleep(0.05)
    if t == "scribble":
        body = json.dumps(_scribble()).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if t == "read":
        environ["wsgi.input"].read()
    code = int(q.get("code", "200"))
    body = b"status %d\n" % code
    start_response("%d Whatever" % code, [("Content-Type", "text/plain"),
                                          ("Content-Length", str(len(body)))])
    return [body]
