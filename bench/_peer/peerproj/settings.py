"""Settings of the django-webhook project measured by bench/peer.py.

PEER_DATABASE_URL (postgres://user@host:port/name) and PEER_BROKER_URL (redis://...) come
from bench/peer.py. The database connections persist as ours do (config/settings/base.py:
CONN_MAX_AGE 600 with health checks), so neither side reconnects per task.
"""

import os
from urllib.parse import urlsplit

SECRET_KEY = "bench-peer-secret-key-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_webhook",
    "peerapp",
]

_db = urlsplit(os.environ.get("PEER_DATABASE_URL", "postgres://root@127.0.0.1:5432/bench_peer"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "",
        "PORT": str(_db.port or ""),
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}

# django-webhook: the models whose changes send webhooks; every other setting at its
# default (STORE_EVENTS=True: a WebhookEvent row per request, its status updated after the
# send; USE_CACHE=True: the webhooks of a topic read once a minute per process).
DJANGO_WEBHOOK = {"MODELS": ["peerapp.Order"]}

CELERY_BROKER_URL = os.environ.get("PEER_BROKER_URL", "redis://127.0.0.1:6379/5")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
