"""Settings as on Heroku: everything from the environment, nothing lenient."""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "insecure-key-for-local-rehearsals-only")
DEBUG = False

# Strict: only the app's own domain. Any other Host gets 400 Bad Request.
ALLOWED_HOSTS = [
    host
    for host in [os.environ.get("HEROKU_APP_DEFAULT_DOMAIN_NAME", "")]
    if host
]

# The router terminates TLS and says so in X-Forwarded-Proto; plain http gets a 301 to https.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True

INSTALLED_APPS = ["catalog"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
    }
]


def database(url):
    """DATABASE_URL (postgres://user:password@host:port/name) as Django wants it."""
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": parts.port or "",
        "CONN_MAX_AGE": 60,
    }


DATABASES = {"default": database(os.environ.get("DATABASE_URL", "postgres://localhost/shop"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
