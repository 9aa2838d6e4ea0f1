"""WSGI application for bench/run: one module, dispatch on PATH_INFO.

Routes (all GET unless noted):
  /hello   13-byte body
  /big     1 MiB body returned as ONE bytes object
  /file    64 KiB file (data/file.bin next to this module) through wsgi.file_wrapper
  /echo    POST: the request body echoed back
  /sleep   time.sleep(0.01), then the 13-byte body
  (and /echo/<pattern>, /upload/werkzeug, /upload/django: see the functions below)

The payload bytes are the same as the static variant's files (see payload() below, also used by
bench/run to write hello.txt / big.bin / file.bin).
"""

import os
import threading
import time

HELLO = b"Hello world!\n"  # 13 bytes
BIG_SIZE = 1024 * 1024
FILE_SIZE = 64 * 1024


def payload(size):
    """Deterministic, non-compressible-looking bytes of the given size."""
    block = bytes((i * 131 + 7) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


BIG = payload(BIG_SIZE)
FILE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "file.bin")


def _headers(ctype, length):
    return [("Content-Type", ctype), ("Content-Length", str(length))]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/hello":
        start_response("200 OK", _headers("text/plain", len(HELLO)))
        return [HELLO]
    if path == "/big":
        start_response("200 OK", _headers("application/octet-stream", len(BIG)))
        return [BIG]
    if path == "/file":
        f = open(FILE_PATH, "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", _headers("application/octet-stream", size))
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return wrapper(f, 65536)
        return iter(lambda: f.read(65536), b"")
    if path.startswith("/echo/"):
        return _echo_pattern(environ, start_response, path[len("/echo/"):])
    if path == "/upload/werkzeug":
        return _upload_werkzeug(environ, start_response)
    if path == "/upload/django":
        return _upload_django(environ, start_response)
    if path == "/echo":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        start_response("200 OK", _headers("application/octet-stream", len(body)))
        return [body]
    if path == "/sleep":
        time.sleep(0.01)
        start_response("200 OK", _headers("text/plain", len(HELLO)))
        return [HELLO]
    body = b"not found\n"
    start_response("404 Not Found", _headers("text/plain", len(body)))
    return [body]


def _echo_pattern(environ, start_response, pattern):
    """The request body read the way frameworks read it, echoed back: read() whole,
    read(n) loops (n = 8k, 64k, 256k, 1m), readline() loops, iteration."""
    inp = environ["wsgi.input"]
    parts = []
    if pattern == "read":
        parts.append(inp.read())
    elif pattern == "lines":
        while True:
            line = inp.readline()
            if not line:
                break
            parts.append(line)
    elif pattern == "iter":
        parts.extend(inp)
    else:
        n = {"8k": 8192, "64k": 65536, "256k": 262144, "1m": 1048576}[pattern]
        while True:
            b = inp.read(n)
            if not b:
                break
            parts.append(b)
    body = b"".join(parts)
    start_response("200 OK", _headers("application/octet-stream", len(body)))
    return [body]


def _upload_werkzeug(environ, start_response):
    """A multipart upload parsed by werkzeug (Flask's request.files); answers the file's
    size and the form field."""
    from werkzeug.formparser import parse_form_data
    _, form, files = parse_form_data(environ)
    f = files["file"]
    body = ("%d %s" % (len(f.read()), form.get("name", ""))).encode()
    start_response("200 OK", _headers("text/plain", len(body)))
    return [body]


_DJANGO = []
# The first requests arrive together under load: without it several threads ran the settings
# module at once (Django's "Settings already configured" in half the warm-up's responses).
_DJANGO_LOCK = threading.Lock()


def _upload_django(environ, start_response):
    """The same upload parsed by Django's WSGIRequest (request.FILES); Django configured by
    django_app.py (one set of settings per interpreter)."""
    with _DJANGO_LOCK:
        if not _DJANGO:
            import importlib.util
            spec = importlib.util.spec_from_file_location(
                "bench_django_app", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "django_app.py"))
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            from django.core.handlers.wsgi import WSGIRequest
            _DJANGO.append(WSGIRequest)
    request = _DJANGO[0](environ)
    f = request.FILES["file"]
    body = ("%d %s" % (len(f.read()), request.POST.get("name", ""))).encode()
    start_response("200 OK", _headers("text/plain", len(body)))
    return [body]
