"""Whether a 1 MiB request body's bytes object came from mmap (glibc marks such a chunk
IS_MMAPPED in its size field) or from one of malloc's arenas."""
import ctypes
import os

IS_MMAPPED = 0x2


def application(environ, start_response):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n)
    # a bytes object above pymalloc's 512-byte limit is one malloc chunk starting at id()
    size_field = ctypes.c_size_t.from_address(id(body) - ctypes.sizeof(ctypes.c_size_t)).value
    where = "mmap" if size_field & IS_MMAPPED else "arena"
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [("%s %d" % (where, len(body))).encode()]
