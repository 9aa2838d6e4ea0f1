"""Records that it ran, and as whom: the trust tests forge requests naming this script and
check that no group ran it."""
import os


def application(environ, start_response):
    with open(os.path.join(environ.get("INTRUDER_DUMP_DIR", "/tmp"), "marker-ran-%d" % os.getuid()), "w") as f:
        f.write(environ.get("mod_wsgi.process_group", ""))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"marker"]
