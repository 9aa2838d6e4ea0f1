"""WSGI application for bench/run: one module, dispatch on PATH_INFO.

Routes (all GET unless noted):
  /hello   13-byte body
  /big     1 MiB body returned as ONE bytes object
  /file    64 KiB file (data/file.bin next to this module) through wsgi.file_wrapper
  /echo    POST: the request body echoed back
  /sleep   time.sleep(0.01), then the 13-byte body

The payload bytes are the same as the static variant's files (see payload() below, also used by
bench/run to write hello.txt / big.bin / file.bin).
"""

import os
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
