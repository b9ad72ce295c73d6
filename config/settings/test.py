"""Settings for the test suite (`make test`)."""

from .base import *
from .base import derived_fernet_key

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
FERNET_KEYS = [derived_fernet_key(SECRET_KEY)]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["*"]
LOGGING["root"]["level"] = "WARNING"
