"""Development settings: `make run` uses these. DEBUG on, keys derived when unset."""

from .base import *
from .base import derived_fernet_key, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "django-insecure-local-development-key-change-me"
FERNET_KEYS = FERNET_KEYS or [derived_fernet_key(SECRET_KEY)]
