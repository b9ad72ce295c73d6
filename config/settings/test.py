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
# No background wake-up timers in the test process (cluster tests run their own processes).
WEBHOOKS_WAKEUPS = False
# A queue name of this run's own, so tasks left in a shared Redis by another run are ignored.
Q_CLUSTER["name"] = env.str("Q_CLUSTER_NAME", default=f"test-{os.getpid()}")
