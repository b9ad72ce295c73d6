"""Settings for the test suite (`make test`)."""

import os
import tempfile

from .base import *
from .base import derived_fernet_key, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
FERNET_KEYS = [derived_fernet_key(SECRET_KEY)]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]

# Tests deliver to, and check, servers on 127.0.0.1; the SSRF tests switch this off.
ALLOW_PRIVATE_URLS = True
WEBHOOKS_TIMEOUT = 5.0
# A queue name of this run's own, so tasks left in a shared Redis by another run are ignored.
Q_CLUSTER["name"] = env.str("Q_CLUSTER_NAME", default=f"test-{os.getpid()}")

if DATABASE_VENDOR == "sqlite":
    # A file test database instead of Django's shared-cache in-memory one: a cluster
    # subprocess (tests/cluster.py) can see it, and threads in tests (e.g. the token-refresh
    # concurrency test) queue on SQLite's IMMEDIATE write lock like real processes do
    # instead of failing with "database table is locked". One file per test process.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"integrations-test-{os.getpid()}.sqlite3"),
    }
# No background wake-up timers in the test process unless a cluster test asks for them.
WEBHOOKS_WAKEUPS = env.bool("WEBHOOKS_WAKEUPS", default=False)
# Provider calls in tests are not slowed by the catalogue's rate limits, and the call log is
# written only when a test flushes it (tests/integrations/test_ratelimit.py, test_calllog.py
# turn each on).
INTEGRATIONS_RATE_LIMITS_ENABLED = env.bool("INTEGRATIONS_RATE_LIMITS_ENABLED", default=False)
INTEGRATIONS_CALL_LOG_BACKGROUND = env.bool("INTEGRATIONS_CALL_LOG_BACKGROUND", default=False)
