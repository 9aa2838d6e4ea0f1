"""Bulk bodies for the daemon-mode shared-memory ring tests: every response is derived from
the query string or the request body, so the test can check each byte."""
import hashlib
import os
import re
from urllib.parse import parse_qs


def pattern(n, seed):
    """n deterministic pseudo-random bytes (the test computes the same)."""
    block = b"".join(hashlib.sha256(b"%d:%d" % (seed, i)).digest() for i in range(64))
    return (block * (n // len(block) + 1))[:n]


# The rings' memfds (not the daemon's other shared memory, such as its status board).
RINGS = re.compile(r"memfd:rwsgi-re(quest|sponse)")


def ring_rss_kib():
    """Resident KiB of all ring mappings of this process (smaps: a mapping line, then its
    counters)."""
    rss, in_ring = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if "-" in line.split(" ")[0]:
                in_ring = RINGS.search(line) is not None
            elif in_ring and line.startswith("Rss:"):
                rss += int(line.split()[1])
    return rss


def application(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    t = q.get("t", "")
    inp = environ["wsgi.input"]
    if t == "echo":
        # read in chunks of c bytes (0: all at once) and send the body back
        c = int(q.get("c", "0"))
        if c:
            parts = iter(lambda: inp.read(c), b"")
            data = b"".join(parts)
        else:
            data = inp.read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("X-Sha256", hashlib.sha256(data).hexdigest())])
        return [data]
    if t == "gen":
        # a generator yielding chunks of the given sizes
        sizes = [int(s) for s in q["sizes"].split(",")]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (pattern(n, i) for i, n in enumerate(sizes))
    if t == "write_read":
        # a large write() before the body is read: credit and body frames interleave
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        write(pattern(int(q.get("n", "500000")), 7))
        data = inp.read()
        return [data, pattern(int(q.get("n", "500000")), 8)]
    if t == "headers":
        total = sum(len(v) for k, v in environ.items() if k.startswith("HTTP_X_BIG"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % total]
    if t == "maps":
        with open("/proc/self/maps") as f:
            names = sorted({line[line.index("memfd:"):].strip() for line in f if RINGS.search(line)})
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid())),
                                  ("X-Ring-Rss-KiB", str(ring_rss_kib()))])
        return ["\n".join(names).encode()]
    if t == "rings":
        # how many request rings this process has mapped: one per connection from Apache
        with open("/proc/self/maps") as f:
            n = sum(1 for line in f if "memfd:rwsgi-request" in line)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(n).encode()]
    if t == "echo_rss":
        # the rings' resident size before this request touches them, then the echo
        before = ring_rss_kib()
        data = inp.read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("X-Ring-Rss-KiB", str(before))])
        return [data]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"unknown test"]
