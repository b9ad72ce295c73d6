"""Settings for the test suite (`make test`)."""

import os

from .base import *
from .base import derived_fernet_key, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
FERNET_KEYS = [derived_fernet_key(SECRET_KEY)]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
LOGGING["root"]["level"] = "WARNING"

# Tests deliver to a receiver on 127.0.0.1; the SSRF tests switch this off.
WEBHOOKS_ALLOW_PRIVATE_URLS = True
WEBHOOKS_TIMEOUT = 5.0
# A queue name of this run's own, so tasks left in a shared Redis by another run are ignored.
Q_CLUSTER["name"] = env.str("Q_CLUSTER_NAME", default=f"test-{os.getpid()}")

# A cluster subprocess (tests/cluster.py) must see the test database: on SQLite use a file.
if DATABASE_VENDOR == "sqlite":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
# Settings a cluster subprocess receives from the test that starts it.
if env.str("WEBHOOKS_LEASE_SECONDS", default=""):
    WEBHOOKS_LEASE_SECONDS = env.float("WEBHOOKS_LEASE_SECONDS")
# No background wake-up timers in the test process unless a cluster test asks for them.
WEBHOOKS_WAKEUPS = env.bool("WEBHOOKS_WAKEUPS", default=False)
