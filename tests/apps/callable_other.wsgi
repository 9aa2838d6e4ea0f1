# The WSGI callable is called `app`, not `application`: it is found only with
# `WSGICallableObject app` or `WSGIScriptAlias ... callable-object=app`.


def app(environ, start_response):
    body = ("callable=app callable_object=%s" % environ.get("mod_wsgi.callable_object")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
