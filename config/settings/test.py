"""Settings for the test suite (`make test`)."""

from .base import *
from .base import derived_fernet_key

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
FERNET_KEYS = [derived_fernet_key(SECRET_KEY)]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
LOGGING["root"]["level"] = "WARNING"

if DATABASE_VENDOR == "sqlite":
    # A file test database instead of Django's shared-cache in-memory one: threads in tests
    # (e.g. the token-refresh concurrency test) then queue on SQLite's IMMEDIATE write lock
    # like real processes do, instead of failing at once with "database table is locked".
    # One file per test process (pytest-xdist adds its own worker suffix).
    import os
    import tempfile

    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"integrations-test-{os.getpid()}.sqlite3"),
    }
