"""Reports interpreter-level settings rwsgi applies (WSGIPython*, WSGIRestrict*, preloading),
plus a few environ keys, as JSON."""
import builtins
import json
import os
import signal
import sys
import warnings


def _try(f):
    try:
        return {"ok": f()}
    except BaseException as e:  # report, don't fail the request
        return {"error": "%s: %s" % (type(e).__name__, e)}


def application(environ, start_response):
    def extra():
        import rwsgi_extra_mod
        return rwsgi_extra_mod.VALUE

    out = {
        "pid": os.getpid(),
        "optimize": sys.flags.optimize,
        "debug": __debug__,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "switch_interval": sys.getswitchinterval(),
        "hash": hash("rwsgi"),
        "warnings": [[f[0], f[2].__name__] for f in warnings.filters[:3]],
        "extra_module": _try(extra),
        "preloaded_pid": getattr(builtins, "rwsgi_preloaded_pid", None),
        "application_group": environ.get("mod_wsgi.application_group"),
        "authorization": environ.get("HTTP_AUTHORIZATION"),
        "argv": sys.argv,
        "prefix": sys.prefix,
    }
    if "print" in environ.get("QUERY_STRING", ""):
        out["print"] = _try(lambda: print("introspect print marker", flush=True))
    if "signal" in environ.get("QUERY_STRING", ""):
        out["signal"] = _try(lambda: repr(signal.signal(signal.SIGUSR2, lambda *a: None)))
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
