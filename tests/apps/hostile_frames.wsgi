"""A hostile daemon-mode application: it writes raw rwsgi frames into the Unix sockets of its
own process (the connection to the Apache child that serves it), bypassing every check the
WSGI layer makes, then dies. The Apache side must treat those bytes as untrusted: a correct
response or a 502 for the client, and the Apache child lives.

Frame: 16-byte little-endian header (magic 0x5752 "RW", version 1, kind, flags, reserved,
request id, payload length) + payload (src/ipc/frame.rs). The first request on a fresh
connection has id 1 (this process is new for every case: it exits after each)."""
import os
import socket
import struct
import time

MAGIC, VERSION = 0x5752, 1
RESPONSE_HEAD, RESPONSE_BODY, RESPONSE_FILE, RESPONSE_END = 8, 9, 11, 12
FLAG_END = 2


def frame(kind, payload=b"", flags=0, request_id=1):
    return struct.pack("<HBBHHII", MAGIC, VERSION, kind, flags, 0, request_id, len(payload)) + payload


def head(status_line, headers):
    out = struct.pack("<HI", int(status_line[:3]), len(status_line)) + status_line
    out += struct.pack("<I", len(headers))
    for k, v in headers:
        out += struct.pack("<I", len(k)) + k + struct.pack("<I", len(v)) + v
    return out


def connections():
    """Every connected Unix socket of this process (not the listener)."""
    socks = []
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if s.family == socket.AF_UNIX and s.getpeername() is not None:
                s.getpeername()
                socks.append(s)
                continue
        except OSError:
            pass
        s.close()
    return socks


CASES = {
    "framing": [
        head(b"200 OK", [
            (b"Content-Type", b"text/plain"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Connection", b"keep-alive"),
            (b"Keep-Alive", b"timeout=99"),
            (b"Upgrade", b"h2c"),
            (b"TE", b"trailers"),
            (b"Trailer", b"X-Evil"),
            (b"Content-Length", b"5"),
        ]),
        b"hello",
    ],
    "close": [head(b"200 OK", [(b"Connection", b"close"), (b"Content-Length", b"5")]), b"hello"],
    "negative-length": [head(b"200 OK", [(b"Content-Length", b"-1")]), b"hello"],
    "text-length": [head(b"200 OK", [(b"Content-Length", b"five")]), b"hello"],
    "two-lengths": [head(b"200 OK", [(b"Content-Length", b"5"), (b"Content-Length", b"6")]), b"hello"],
    "overlong": [head(b"200 OK", [(b"Content-Length", b"5")]), b"hello, and much more than that"],
    "short": [head(b"200 OK", [(b"Content-Length", b"100")]), b"hi"],
}


def application(environ, start_response):
    case = environ.get("QUERY_STRING", "")
    socks = connections()
    if case == "truncated-file":
        # a big file handed over for sendfile, truncated while Apache (mod_deflate) reads it
        path = "/tmp/rwsgi-hostile-%d" % os.getpid()
        with open(path, "wb") as f:
            f.truncate(256 << 20)
        fd = os.open(path, os.O_RDWR)
        os.unlink(path)
        for s in socks:
            s.sendmsg([frame(RESPONSE_HEAD, head(b"200 OK", [(b"Content-Type", b"application/octet-stream")]))])
            s.sendmsg([frame(RESPONSE_FILE, struct.pack("<QQ", 0, 256 << 20))],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
            s.sendmsg([frame(RESPONSE_END)])
        time.sleep(0.05)
        os.ftruncate(fd, 0)
        time.sleep(0.5)
        os._exit(0)
    if case == "whole-bad-split":
        # a whole-response frame whose head length points past its payload
        for s in socks:
            s.sendmsg([frame(RESPONSE_HEAD, struct.pack("<I", 9999) + b"x", flags=FLAG_END)])
        time.sleep(0.2)
        os._exit(0)
    if case.startswith("whole-"):
        # the same response as one frame: head length, head, body (ResponseHead + FLAG_END)
        h, body = CASES[case[len("whole-"):]]
        for s in socks:
            s.sendmsg([frame(RESPONSE_HEAD, struct.pack("<I", len(h)) + h + body, flags=FLAG_END)])
        time.sleep(0.2)
        os._exit(0)
    h, body = CASES[case]
    for s in socks:
        s.sendmsg([frame(RESPONSE_HEAD, h)])
        s.sendmsg([frame(RESPONSE_BODY, body, flags=FLAG_END)])
    time.sleep(0.2)
    os._exit(0)
