"""The .wsgi file of Flask's mod_wsgi deployment docs: put the application's directory on
sys.path and import the Flask object as `application`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flask_app import app as application  # noqa: E402,F401
