"""Return the environ keys that trusted proxy headers can change, as JSON.

Every CGI-style key (upper-case, str value: REMOTE_ADDR, HTTP_HOST, SERVER_NAME,
SERVER_PORT, SCRIPT_NAME, PATH_INFO, HTTPS if present, every HTTP_* header ...),
wsgi.url_scheme and the mod_wsgi.* str keys the proxy fixups touch
(mod_wsgi.script_name / mod_wsgi.path_info / mod_wsgi.mount_point).
"""
import json

EXTRA = ("wsgi.url_scheme", "mod_wsgi.script_name", "mod_wsgi.path_info", "mod_wsgi.mount_point")


def application(environ, start_response):
    out = {
        k: v
        for k, v in environ.items()
        if isinstance(v, str) and (k in EXTRA or ("." not in k and k.upper() == k))
    }
    body = json.dumps(out, sort_keys=True).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
