"""A stand-in for the New Relic agent (`newrelic.agent`): records what mod_wsgi's
WSGINewRelicConfigFile / newrelic-config-file make the server call, and marks responses."""
import os

INITIALIZED = []


def initialize(config_file, environment=None):
    INITIALIZED.append((config_file, environment))


def WSGIApplicationWrapper(application, name=None):
    def wrapped(environ, start_response):
        def start(status, headers, exc_info=None):
            cf, env = INITIALIZED[-1] if INITIALIZED else ("", None)
            headers = list(headers) + [
                ("X-Fake-NewRelic", "%s|%s|%d" % (os.path.basename(cf), env, len(INITIALIZED)))]
            return start_response(status, headers, exc_info)
        return application(environ, start)
    return wrapped
