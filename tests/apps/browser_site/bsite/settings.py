"""Settings of the project that tests/test_browser.py drives with headless Chromium: the
admin with auth, sessions, messages and staticfiles, one app (inventory) with a FileField.

Its state lives in the server's var/ directory, next to the apps/ copy this project sits in
(harness.py's {var}; test_browser.py creates it, owned by www-data, in the Debian layout copy):
the SQLite database, the collectstatic output (served by Apache: Alias /static/) and the
uploads (MEDIA_ROOT, served by Apache: Alias /media/).
"""
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR.parent.parent / "var"

SECRET_KEY = "rwsgi-browser-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["browser-site.test"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "inventory",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "bsite.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
    }
}

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
# Django exports TZ into the (shared, embedded) process: keep Apache log times in UTC
TIME_ZONE = "UTC"

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    # errors only: a 4xx (Chromium's /favicon.ico) would be a warning in Apache's error log
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR"}},
}
