"""How many malloc arenas (glibc heaps) the process serving the request has."""
import ctypes
import os

libc = ctypes.CDLL("libc.so.6")
libc.open_memstream.restype = ctypes.c_void_p
libc.open_memstream.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.free.argtypes = [ctypes.c_void_p]


def heaps():
    buf, size = ctypes.c_void_p(), ctypes.c_size_t()
    fp = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    xml = ctypes.string_at(buf, size.value)
    libc.free(buf)
    return xml.count(b"<heap nr=")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [str(heaps()).encode()]
