"""PEP 3333 edge cases, selected with the query parameter ``t=``.

Request-body cases (t=echo, echo_cl, read_n, readline, readline_n, readlines,
iter) report what wsgi.input returned; response cases produce valid or
deliberately invalid responses (bad status, bad headers, Content-Length
mismatches, exceptions, close() bookkeeping, file_wrapper variants...).

State that must survive between requests (close() calls) goes to the
server's var/ directory ({root}/var, world-writable), next to apps/.
"""
import io
import json
import os
import sys
import time
from urllib.parse import parse_qs

HERE = os.path.dirname(os.path.abspath(__file__))
VAR = os.path.join(os.path.dirname(HERE), "var")
FW_DATA = os.path.join(HERE, "fw_data.txt")


def _q(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


def _respond(start_response, body, status="200 OK", ctype="text/plain", extra=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
    headers.extend(extra)
    start_response(status, headers)
    return [body]


def _json(start_response, obj, extra=()):
    return _respond(start_response, json.dumps(obj, sort_keys=True), ctype="application/json", extra=extra)


def _lines_json(lines):
    return [x.decode("latin-1") for x in lines]


def _mark_path(ident):
    safe = "".join(c for c in ident if c.isalnum() or c in "-_") or "default"
    return os.path.join(VAR, "closed-" + safe)


class ClosingIterable:
    """An iterable whose close() records that it was called."""

    def __init__(self, ident, mode, chunks, delay):
        self.ident = ident
        self.mode = mode
        self.chunks = chunks
        self.delay = delay
        self.sent = 0

    def __iter__(self):
        for i in range(self.chunks):
            if self.mode == "raise" and i == 2:
                raise RuntimeError("close-test exception mid-iteration")
            if self.delay:
                time.sleep(self.delay)
            self.sent += 1
            yield (b"chunk%04d;" % i) * (1 if self.mode != "slow" else 6000)

    def close(self):
        with open(_mark_path(self.ident), "w") as f:
            f.write("closed mode=%s sent=%d" % (self.mode, self.sent))


def _exc_after_gen(q):
    yield b"first chunk;"
    yield b"second chunk;"
    raise RuntimeError("exc_after: failure after body started " + q.get("id", ""))


class _LoggingInClose(list):
    """A list response whose close() writes to wsgi.errors and then raises."""

    def close(self):
        print("close_logs: a line written in close()", file=self.errors)
        raise RuntimeError("close_logs: close() failed")


def _cl_gen(after):
    # the second chunk completes the Content-Length (10); then more bytes, or an error
    yield b"hello"
    yield b"world"
    if after == "raise":
        raise RuntimeError("gen_cl: failure after the Content-Length was complete")
    yield b"extra"


def _slow_gen(n, delay, size):
    for i in range(n):
        yield (b"%d:" % i) + b"x" * size + b"\n"
        time.sleep(delay)


def application(environ, start_response):
    q = _q(environ)
    t = q.get("t", "")
    inp = environ["wsgi.input"]

    # ---------------------------------------------------------- request body
    if t == "echo":
        data = inp.read()
        return _respond(start_response, data, ctype="application/octet-stream",
                        extra=[("X-Read-Len", str(len(data)))])
    if t == "echo_cl":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        data = inp.read(n)
        more = inp.read()
        return _respond(start_response, data, ctype="application/octet-stream",
                        extra=[("X-Read-Len", str(len(data))), ("X-After-Len", str(len(more)))])
    if t == "read_n":
        n = int(q.get("n", "7"))
        sizes, parts = [], []
        while True:
            c = inp.read(n)
            if not c:
                break
            sizes.append(len(c))
            parts.append(c)
        eof_again = inp.read(n)
        return _respond(start_response, b"".join(parts), ctype="application/octet-stream",
                        extra=[("X-Chunk-Sizes", ",".join(map(str, sizes))),
                               ("X-EOF-Again", repr(eof_again))])
    if t == "read0":
        first = inp.read(0)
        rest = inp.read()
        return _json(start_response, {"read0": first.decode(), "rest": rest.decode("latin-1")})
    if t == "readline":
        lines = []
        while True:
            line = inp.readline()
            if not line:
                break
            lines.append(line)
        return _json(start_response, _lines_json(lines))
    if t == "readline_n":
        n = int(q.get("n", "5"))
        lines = []
        while True:
            line = inp.readline(n)
            if not line:
                break
            lines.append(line)
        return _json(start_response, _lines_json(lines))
    if t == "readlines":
        if "hint" in q:
            lines = inp.readlines(int(q["hint"]))
            rest = inp.read()
            return _json(start_response, {"lines": _lines_json(lines), "rest": rest.decode("latin-1")})
        return _json(start_response, _lines_json(inp.readlines()))
    if t == "iter":
        return _json(start_response, _lines_json(list(inp)))
    if t == "input_api":  # the object itself: type, argument handling
        out = {"type": type(inp).__module__ + "." + type(inp).__name__}
        try:
            type(inp)()
            out["new"] = "allowed"
        except TypeError:
            out["new"] = "TypeError"
        for name, call in (("read_str", lambda: inp.read("1")),
                           ("read_two", lambda: inp.read(1, 2)),
                           ("readline_float", lambda: inp.readline(1.5))):
            try:
                call()
                out[name] = "no error"
            except TypeError:
                out[name] = "TypeError"
        out["read_none"] = inp.read(None).decode("latin-1")
        out["readline_none_at_eof"] = inp.readline(None).decode("latin-1")
        out["close"] = repr(inp.close())
        return _json(start_response, out)
    if t == "read_pieces":  # read(n) loop over a large body: sizes and the bytes, hashed
        import hashlib
        n = int(q.get("n", "8192"))
        h, sizes = hashlib.sha256(), set()
        while True:
            c = inp.read(n)
            if not c:
                break
            sizes.add(len(c))
            h.update(c)
        return _json(start_response, {"sha256": h.hexdigest(), "sizes": sorted(sizes)})
    if t == "line_pieces":  # readline / iteration over many short lines
        import hashlib
        h, count = hashlib.sha256(), 0
        lines = iter(inp) if q.get("how") == "iter" else iter(inp.readline, b"")
        for line in lines:
            h.update(line)
            count += 1
        return _json(start_response, {"sha256": h.hexdigest(), "lines": count})
    if t == "input_types":
        a = inp.read(3)
        b = inp.readline()
        return _json(start_response, {"read": type(a).__name__, "readline": type(b).__name__})

    # ------------------------------------------------------ invalid responses
    if t == "badstatus":
        return _respond(start_response, "bad", status="2000 OK")
    if t == "nostatusspace":
        return _respond(start_response, "bad", status="200")
    if t == "status_ctl":
        return _respond(start_response, "bad", status="200 O\x01K")
    if t == "bytes_status":
        start_response(b"200 OK", [("Content-Type", "text/plain")])
        return [b"bad"]
    if t == "nonlatin":
        return _respond(start_response, "bad", extra=[("X-Euro", "\u20ac")])
    if t == "crlf":
        return _respond(start_response, "bad", extra=[("X-Injected", "a\r\nX-Evil: 1")])
    if t == "lf":
        return _respond(start_response, "bad", extra=[("X-Injected", "a\nX-Evil: 1")])
    if t == "bytes_name":
        start_response("200 OK", [(b"X-Bytes-Name", "v"), ("Content-Type", "text/plain")])
        return [b"bad"]
    if t == "bytes_value":
        start_response("200 OK", [("X-Bytes-Value", b"v"), ("Content-Type", "text/plain")])
        return [b"bad"]
    if t == "headers_not_list":
        start_response("200 OK", {"Content-Type": "text/plain"})
        return [b"bad"]
    if t == "header_not_tuple":
        start_response("200 OK", [("Content-Type", "text/plain", "x")])
        return [b"bad"]
    if t == "space_in_name":
        return _respond(start_response, "bad", extra=[("X Space", "v")])
    if t == "hop":
        h = q.get("h", "connection")
        hop = {
            "connection": ("Connection", "close"),
            "keepalive": ("Keep-Alive", "timeout=5"),
            "te": ("Transfer-Encoding", "chunked"),
            "upgrade": ("Upgrade", "websocket"),
            "proxy_auth": ("Proxy-Authenticate", "Basic"),
            "trailer": ("Trailer", "X-Foo"),
        }[h]
        body = b"hop-by-hop header from the app"
        start_response("200 OK", [("Content-Type", "text/plain"), hop])
        return [body]
    if t == "clshort":  # Content-Length larger than the body sent
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"abc"]
    if t == "cllong":  # Content-Length smaller than the body sent
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"0123456789"]
    if t == "close_logs":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        r = _LoggingInClose([b"hello"])
        r.errors = environ["wsgi.errors"]
        return r
    if t == "gen_cl":  # a generator's chunk completes the Content-Length; `after`: what follows
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return _cl_gen(q.get("after", "more"))
    if t == "clbad":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "abc")])
        return [b"abc"]
    if t == "str_body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["a str, not bytes"]
    if t == "int_body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [42]
    if t == "str_body_after":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"bytes first;", "then a str"]
    if t == "exc_before":
        raise RuntimeError("exc_before: failure before start_response " + q.get("id", ""))
    if t == "exc_after":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _exc_after_gen(q)
    if t == "nostart":
        return [b"body without start_response"]
    if t == "twice":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        start_response("201 Second", [("Content-Type", "text/plain"), ("X-Second", "1")])
        return [b"twice"]
    if t == "excinfo":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("replace the response")
        except ValueError:
            start_response("500 Replaced", [("Content-Type", "text/plain"), ("X-Replaced", "1")],
                           sys.exc_info())
        return [b"replaced by exc_info"]
    if t == "excinfo_after":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first;"
            try:
                raise ValueError("late error")
            except ValueError as err:
                try:
                    start_response("500 Late", [("Content-Type", "text/plain")], sys.exc_info())
                except ValueError as again:
                    yield b"reraised-same" if again is err else b"reraised-other"
                    return
                except BaseException as other:  # noqa
                    yield ("reraised-%s" % type(other).__name__).encode()
                    return
                yield b"not-reraised"

        return gen()
    if t in ("excinfo_notuple", "excinfo_short", "twice_after_body"):
        # what start_response raises, reported in the body (the response head is set first)
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        if t == "twice_after_body":
            write(b"first;")
        try:
            if t == "excinfo_notuple":
                start_response("500 X", [("Content-Type", "text/plain")], ["not", "a", "tuple"])
            elif t == "excinfo_short":
                start_response("500 X", [("Content-Type", "text/plain")], (ValueError, None))
            else:
                start_response("201 Again", [("Content-Type", "text/plain")])
        except Exception as e:  # noqa
            return [("%s: %s" % (type(e).__name__, e)).encode()]
        return [b"no exception"]
    if t == "excinfo_after_raise":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen2():
            yield b"first;"
            try:
                raise ValueError("late error propagated")
            except ValueError:
                start_response("500 Late", [("Content-Type", "text/plain")], sys.exc_info())
            yield b"unreachable"

        return gen2()

    # -------------------------------------------------------- valid responses
    if t == "write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one,")
        write(b"two,")
        return [b"three"]
    if t == "write_only":
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        write(b"abc")
        write(b"defghi")
        return []
    if t == "filewrapper":
        f = open(FW_DATA, "rb")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f, 4096)
    if t == "filewrapper_obj":
        data = open(FW_DATA, "rb").read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(data), 1000)
    if t == "filewrapper_offset":
        off = int(q.get("off", "100"))
        f = open(FW_DATA, "rb")
        f.seek(off)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f)
    if t == "filewrapper_after_read":  # read through the buffered object first
        n = int(q.get("n", "10"))
        f = open(FW_DATA, "rb")
        f.read(n)  # its descriptor is now past what the object holds (read-ahead)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f)
    if t == "filewrapper_cl":  # app-provided Content-Length wins
        f = open(FW_DATA, "rb")
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "50")])
        return environ["wsgi.file_wrapper"](f)
    if t == "close":
        ident = q.get("id", "default")
        try:
            os.unlink(_mark_path(ident))
        except OSError:
            pass
        mode = q.get("mode", "normal")
        chunks = int(q.get("n", "5" if mode != "slow" else "400"))
        delay = float(q.get("s", "0" if mode != "slow" else "0.02"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIterable(ident, mode, chunks, delay)
    if t == "closed":
        p = _mark_path(q.get("id", "default"))
        try:
            with open(p) as f:
                state = f.read()
        except OSError:
            state = "not-closed"
        return _respond(start_response, state)
    if t == "finalize":  # what io.TextIOWrapper calls on its buffer when it is collected
        found = {label: callable(getattr(st.buffer, "_dealloc_warn", None)) for label, st in
                 (("errors", environ["wsgi.errors"]), ("stdout", sys.stdout), ("stderr", sys.stderr))}
        return _respond(start_response, json.dumps(found, sort_keys=True))
    if t == "streams":  # what libraries check on wsgi.errors / sys.stdout / sys.stderr
        m = q.get("m", "marker")
        info = {}
        for label, st in (("errors", environ["wsgi.errors"]), ("stdout", sys.stdout),
                          ("stderr", sys.stderr)):
            info[label] = {
                "type": "%s.%s" % (type(st).__module__, type(st).__name__),
                "encoding": st.encoding, "errors": st.errors, "isatty": st.isatty(),
                "line_buffering": st.line_buffering, "writable": st.writable(),
            }
            st.buffer.write(b"buffer-bytes-%s-%s\n" % (label.encode(), m.encode()))
            if q.get("mv"):
                st.buffer.write(bytearray(b"buffer-bytearray-%s-%s\n" % (label.encode(), m.encode())))
                st.buffer.write(memoryview(b"buffer-memoryview-%s-%s\n" % (label.encode(), m.encode())))
            st.buffer.flush()
            st.write("text-%s-%s\n" % (label, m))
        return _respond(start_response, json.dumps(info, sort_keys=True))
    if t == "errors":
        m = q.get("m", "marker")
        environ["wsgi.errors"].write("wsgi-errors-%s\n" % m)
        environ["wsgi.errors"].flush()
        print("stdout-print-%s" % m)
        sys.stdout.flush()
        print("stderr-print-%s" % m, file=sys.stderr)
        sys.stderr.flush()
        environ["wsgi.errors"].writelines(["wsgi-errors-lines-%s\n" % m])
        return _respond(start_response, "logged " + m)
    if t == "overlap":
        # Counts requests in progress at once (across threads and processes) in a locked
        # state file; reports the highest count this request saw.
        import fcntl
        path = os.path.join(VAR, "overlap")

        def update(delta):
            with open(path, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                cur, peak = (int(x) for x in (f.read().split() or ["0", "0"]))
                cur += delta
                peak = max(peak, cur)
                f.seek(0)
                f.truncate()
                f.write("%d %d" % (cur, peak))
                return peak

        update(1)
        time.sleep(float(q.get("s", "0.3")))
        peak = update(-1)
        return _respond(start_response, "peak=%d" % peak)
    if t == "sleep":
        s = float(q.get("s", "0.5"))
        time.sleep(s)
        return _respond(start_response, "slept %s pid=%d" % (s, os.getpid()))
    if t == "bigresp":
        n = int(q.get("n", str(1024 * 1024)))
        body = (b"0123456789abcdef" * (n // 16 + 1))[:n]
        if q.get("cl", "1") == "1":
            return _respond(start_response, body, ctype="application/octet-stream")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body[i:i + 65536] for i in range(0, n, 65536)]
    if t == "bighdr":
        n = int(q.get("n", "40000"))
        return _respond(start_response, "big header", extra=[("X-Big", "b" * n)])
    if t == "status_lower":
        return _respond(start_response, "lower reason", status="200 ok")
    if t == "status_custom":
        return _respond(start_response, "teapot", status="418 I'm A Teapot")
    if t == "head":
        body = ("method=%s" % environ["REQUEST_METHOD"]).encode()
        return _respond(start_response, body, extra=[("X-Method", environ["REQUEST_METHOD"])])
    if t == "head_nocl":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Method", environ["REQUEST_METHOD"])])
        return [b"method=", environ["REQUEST_METHOD"].encode()]
    if t == "generator_slow":
        n = int(q.get("n", "5"))
        s = float(q.get("s", "0.1"))
        size = int(q.get("size", "10"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _slow_gen(n, s, size)
    if t == "multi_cookie":
        start_response("200 OK", [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/; HttpOnly"),
            ("X-Dup", "one"),
            ("X-Dup", "two"),
        ])
        return [b"cookies"]
    if t == "emptybody":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []
    if t == "emptystrings":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"", b"a", b"", b"b", b""]
    if t == "latin1":
        return _respond(start_response, "latin1", extra=[("X-Latin1", "caf\u00e9")])
    if t == "status204":
        start_response("204 No Content", [])
        return []
    if t == "redirect":
        start_response("302 Found", [("Location", "http://example.invalid/next"), ("Content-Type", "text/plain")])
        return [b"moved"]
    if t == "headers":
        # echo request headers (HTTP_*) and a few CGI keys
        out = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k in (
            "CONTENT_TYPE", "CONTENT_LENGTH", "REQUEST_METHOD", "QUERY_STRING")}
        return _json(start_response, out)

    return _respond(start_response, "edge.wsgi: unknown t=%r\n" % t, status="404 Not Found")
