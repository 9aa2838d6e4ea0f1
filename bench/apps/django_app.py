"""Django workload for bench/run: a view rendering a small Django template through Django's
whole request path (WSGIHandler, URL resolver, the middleware `startproject` writes).

Mounted with `WSGIScriptAlias /django <this file>`; the page is GET /django/. The same data and
page as flask_app.py. bench_app.py's Django upload configures Django from here too: every
script runs in one interpreter (%{GLOBAL}), which holds one set of Django settings.
"""

import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from catalogue import PRODUCTS, total_stock  # noqa: E402 (after the path)


def index(request):
    from django.shortcuts import render
    total = total_stock()
    return render(request, "page_django.html",
                  {"title": "Catalogue", "products": PRODUCTS, "total": total})


def configure():
    """Django's settings for both Django workloads, once per interpreter."""
    import django
    from django.conf import settings
    if settings.configured:
        return
    from django.urls import path
    # ROOT_URLCONF names a module: this file is loaded by the WSGI server under a name of its
    # choosing, so the URLs get a module of their own
    urls = types.ModuleType("bench_django_urls")
    urls.urlpatterns = [path("", index)]
    sys.modules["bench_django_urls"] = urls
    settings.configure(
        DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY="bench", USE_TZ=True,
        ROOT_URLCONF="bench_django_urls",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                        "django.contrib.sessions", "django.contrib.messages"],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        TEMPLATES=[{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [os.path.join(HERE, "templates")],
            "OPTIONS": {"context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]},
        }],
        FILE_UPLOAD_MAX_MEMORY_SIZE=4 * 1024 * 1024,
        DATA_UPLOAD_MAX_MEMORY_SIZE=4 * 1024 * 1024,
    )
    django.setup()


configure()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402 (needs the settings)

application = WSGIHandler()
