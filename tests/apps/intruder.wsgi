"""A hostile application in daemon group `a` (run with threads=1) that tries everything it can
reach to get group `b` to run a request, as the trust tests of tests/test_trust.py describe:

1. copies its own writable memory (/proc/self/maps + ctypes.string_at: what the mod_wsgi
   attack read) into a file the test searches for group b's configuration (and, as a control
   that the copy works, for group a's own) — the markers never enter this process;
2. lists its descriptors (fstat on every number: /proc/self/fd of a non-dumpable process is
   not readable by it);
3. steals a real HELLO (with group a's secret) and a real sealed request head from an Apache
   child that connects to its own socket, answering the HELLO itself;
4. reads /proc/net/unix for the other rwsgi sockets and replays all of it to them, plus forged
   frames; and tries to read the memory of group b's processes and of the Apache children.
"""
import ctypes
import json
import os
import re
import select
import socket
import stat
import struct
import sys
import time

MAGIC, VERSION = 0x5752, 1
HELLO, HELLO_ACK, REQUEST_HEAD = 1, 2, 3


def frame(kind, payload=b"", request_id=0):
    return struct.pack("<HBBHHII", MAGIC, VERSION, kind, 0, 0, request_id, len(payload)) + payload


def parse(data):
    if len(data) < 16:
        return None, b""
    magic, version, kind, _flags, _r, _id, length = struct.unpack("<HBBHHII", data[:16])
    if magic != MAGIC:
        return None, b""
    return kind, data[16:16 + length]


def dump_memory(path):
    """Every writable mapping of this process, all-zero pages left out."""
    regions = []
    for line in open("/proc/self/maps").read().splitlines():
        parts = line.split()
        name = parts[5] if len(parts) > 5 else ""
        if parts[1].startswith("rw") and name not in ("[vvar]", "[vvar_vclock]"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            regions.append((start, end))
    zero = bytes(4096)
    written = 0
    with open(path, "wb") as out:
        for start, end in regions:
            try:
                blob = ctypes.string_at(start, end - start)
            except Exception:
                continue
            for off in range(0, len(blob), 4096):
                page = blob[off:off + 4096]
                if page != zero[:len(page)]:
                    out.write(page)
                    written += len(page)
            del blob
    return written


def descriptors():
    out = {}
    for fd in range(0, 4096):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        kind = ("socket" if stat.S_ISSOCK(st.st_mode) else "pipe" if stat.S_ISFIFO(st.st_mode)
                else "file" if stat.S_ISREG(st.st_mode) else "chr" if stat.S_ISCHR(st.st_mode)
                else "dir" if stat.S_ISDIR(st.st_mode) else "other")
        entry = {"kind": kind, "ino": st.st_ino, "dev": st.st_dev}
        if kind == "socket":
            try:
                s = socket.socket(fileno=os.dup(fd))
                entry["family"] = int(s.family)
                entry["name"] = s.getsockname() if s.family == socket.AF_UNIX else str(s.getsockname())
                try:
                    s.getpeername()
                    entry["connected"] = True
                except OSError:
                    entry["connected"] = False
                s.close()
            except OSError as e:
                entry["error"] = str(e)
        if kind == "file":
            try:
                entry["mode"] = os.readlink("/proc/self/fd/%d" % fd)
            except OSError:
                pass
            entry["writable"] = bool(os.get_inheritable(fd) is not None and _writable(fd))
        out[fd] = entry
    return out


def _writable(fd):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY


def steal(seconds):
    """Waits for an Apache child to connect to this group's socket, takes its HELLO (answers
    it), then its next request head. This process has one request thread (this one), so no
    other thread of it accepts the connection or reads its frames: the connection is taken
    off the group's listener here, or found among the descriptors if it was already
    accepted."""
    got = {}
    accepted = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and "head" not in got:
        candidates = list(accepted)
        for fd in range(4, 4096):
            try:
                if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                    continue
                candidates.append(socket.socket(fileno=os.dup(fd)))
            except OSError:
                continue
        try:
            listener = socket.socket(fileno=os.dup(3))
            listener.setblocking(False)
            while True:
                accepted.append(listener.accept()[0])
        except OSError:
            pass
        for s in candidates:
            try:
                s.getpeername()
                data = s.recv(1 << 20, socket.MSG_DONTWAIT)
            except OSError:
                if s not in accepted:
                    s.close()
                continue
            kind, payload = parse(data)
            if kind == HELLO and "hello" not in got:
                got["hello"] = data
                s.send(frame(HELLO_ACK, b"\x00" + struct.pack("<I", os.getpid())))
                got["fd"] = s.fileno()
            elif kind == REQUEST_HEAD and "hello" in got:
                got["head"] = data
            if s not in accepted:
                s.close()
        time.sleep(0.01)
    return got


def other_rwsgi_sockets(own):
    """The other groups' sockets: every listening Unix socket of the system (/proc/net/unix)
    named like rwsgi's, and every socket in our own socket's directory."""
    paths = set()
    for line in open("/proc/net/unix").read().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and re.search(r"/rwsgi\.\d+\.[0-9a-f]+\.sock$", parts[-1]):
            paths.add(parts[-1])
    directory = os.path.dirname(own)
    for name in os.listdir(directory):
        p = os.path.join(directory, name)
        if stat.S_ISSOCK(os.lstat(p).st_mode):
            paths.add(p)
    paths.discard(own)
    return sorted(paths)


def try_frames(path, frames):
    """Sends frames to `path`; what came back (b'' = closed without an answer)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    try:
        s.connect(path)
        for f in frames:
            s.send(f)
        answer = s.recv(65536)
        return {"answer": answer[:32].hex(), "kind": parse(answer)[0]}
    except OSError as e:
        return {"error": str(e)}
    finally:
        s.close()


def peek_memory(pids):
    out = {}
    for pid in pids:
        res = {}
        for what in ("mem", "environ", "maps"):
            try:
                with open("/proc/%d/%s" % (pid, what), "rb") as f:
                    f.read(64)
                res[what] = "read"
            except OSError as e:
                res[what] = type(e).__name__
        out[pid] = res
    return out


def pids_named(pattern):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % d, "rb").read()
        except OSError:
            continue
        if re.search(pattern, cmd):
            out.append(int(d))
    return out


def application(environ, start_response):
    q = environ.get("QUERY_STRING", "")
    if q != "attack":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"group a, pid %d" % os.getpid()]
    report = {}
    # 1. memory, before anything below reads other sockets' names into it
    dump = os.path.join(environ["INTRUDER_DUMP_DIR"], "memory-%d.bin" % os.getpid())
    report["dump"] = dump
    report["dumped_bytes"] = dump_memory(dump)
    # 2. descriptors
    report["fds"] = descriptors()
    own = socket.socket(fileno=os.dup(3)).getsockname()
    report["own_socket"] = own
    # 3. steal a HELLO and a sealed head from an Apache child of our own group
    stolen = steal(8)
    report["stole_hello"] = "hello" in stolen
    report["stole_head"] = "head" in stolen
    # 4. replay to every other group's socket, and forge
    report["replays"] = {}
    for path in other_rwsgi_sockets(own):
        attempts = {}
        if "hello" in stolen:
            attempts["stolen_hello"] = try_frames(path, [stolen["hello"]])
        if "hello" in stolen and "head" in stolen:
            attempts["stolen_hello_then_head"] = try_frames(path, [stolen["hello"], stolen["head"]])
        if "head" in stolen:
            attempts["stolen_head_alone"] = try_frames(path, [stolen["head"]])
        attempts["random_hello"] = try_frames(path, [frame(HELLO, os.urandom(32))])
        forged = b"SCRIPT_FILENAME\x00" + environ["INTRUDER_SCRIPT"].encode()
        attempts["forged_head"] = try_frames(path, [frame(REQUEST_HEAD, forged, 1)])
        report["replays"][path] = attempts
    report["peek"] = peek_memory(pids_named(rb"\(wsgi:victim\)") + pids_named(rb"^/usr/sbin/apache2"))
    body = json.dumps(report, default=str).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
