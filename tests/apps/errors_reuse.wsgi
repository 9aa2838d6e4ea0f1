"""wsgi.errors across the requests of one thread (tests/test_errors_stream.py): what one
request does to its stream must not reach the next one's."""
import json
import weakref

KEPT = []
LAST = [None]


def application(environ, start_response):
    qs = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
    t, m = qs.get("t"), qs.get("m", "")
    stream = environ["wsgi.errors"]
    out = {}
    if t == "same":
        # a weak reference: it does not keep the stream alive (ids alone could repeat
        # because a freed stream's memory was reused)
        out = {"same": LAST[0] is not None and LAST[0]() is stream}
        LAST[0] = weakref.ref(stream)
    elif t == "mark":
        stream.marker = m
    elif t == "attrs":
        out = {"marker": getattr(stream, "marker", None), "line_buffering": stream.line_buffering,
               "write_through": stream.write_through, "encoding": stream.encoding,
               "errors": stream.errors, "name": stream.buffer.name}
    elif t == "reconfigure":
        stream.reconfigure(line_buffering=False, errors="strict")
    elif t == "rename":
        try:
            stream.buffer.name = "<renamed>"
        except AttributeError:  # mod_wsgi's Log: read-only
            pass
    elif t == "keep":
        KEPT.append(stream)
    elif t == "use-kept":
        try:
            KEPT[-1].write("late-%s\n" % m)
            out["kept"] = "written"
        except RuntimeError as e:
            out["kept"] = str(e)
        out["same"] = KEPT[-1] is stream
        stream.write("own-%s\n" % m)
    elif t == "partial":
        stream.write("partial-%s" % m)
    elif t == "line":
        stream.write("line-%s\n" % m)
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
