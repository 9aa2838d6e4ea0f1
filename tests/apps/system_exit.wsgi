# An application that calls sys.exit(): mod_wsgi logs it as ignored, with its traceback,
# answers 500 and the process goes on.
import sys


def application(environ, start_response):
    sys.exit("rwsgi-system-exit-marker")
