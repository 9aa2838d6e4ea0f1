"""Runs Python code (holding the GIL) for ?s=SECONDS; ?s=0 answers at once.

While it spins it keeps a marker file var/busy-<pid>-<thread> so a test knows the request
is inside Python before it stops the server."""
import os
import threading
import time
from urllib.parse import parse_qs

VAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "var")


def application(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    seconds = float(q.get("s", ["0"])[0])
    n = 0
    if seconds > 0:
        marker = os.path.join(VAR, f"busy-{os.getpid()}-{threading.get_ident()}")
        with open(marker, "w"):
            pass
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            n += 1
        os.unlink(marker)
    body = str(n).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
