"""
WSGI config for bsite project, as `django-admin startproject` writes it: it does not touch
sys.path, so the project directory must come from WSGIPythonPath / python-path= (the
configuration in Django's "How to use Django with Apache and mod_wsgi").
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bsite.settings")

application = get_wsgi_application()
