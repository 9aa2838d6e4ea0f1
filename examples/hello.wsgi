# The smallest WSGI application: what `scripts/serve` shows on http://127.0.0.1:8000/.
import sys


def application(environ, start_response):
    body = (
        "Hello from rwsgi!\n"
        "Python %s, application group %r, process group %r\n"
        % (sys.version.split()[0], environ["mod_wsgi.application_group"], environ["mod_wsgi.process_group"])
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body]
