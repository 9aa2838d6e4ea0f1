"""Like a Django project whose database is down at start: the first import fails while the
flag file next to this script exists, and a process that failed once can never initialise
again (Django's setup cannot run twice). Only a new process recovers (startup-timeout)."""
import os
import sys

FLAG = os.path.join(os.path.dirname(__file__), "startup_down.flag")

if getattr(sys, "_rwsgi_startup_attempted", False):
    raise RuntimeError("cannot initialise twice in one process")
sys._rwsgi_startup_attempted = True
if os.path.exists(FLAG):
    raise RuntimeError("database is down")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"up in pid %d" % os.getpid()]
