"""Production settings: only hardens the base; secrets have no defaults.

`manage.py` uses these unless DEBUG is asked for (config/environment.py); wsgi/asgi always.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import csrf_trusted_origins, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="")
FERNET_KEYS = env.list("FERNET_KEYS", default=[])
# Where browsers and providers reach this service: OAuth redirect URIs and the CSRF origin
# derive from it, so there is no localhost default here.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")
_missing = [
    name
    for name, present in [
        ("SECRET_KEY", bool(SECRET_KEY)),
        ("FERNET_KEYS", bool(FERNET_KEYS) and all(FERNET_KEYS)),
        ("PUBLIC_BASE_URL", bool(PUBLIC_BASE_URL)),
    ]
    if not present
]
if _missing:
    raise ImproperlyConfigured(f"{', '.join(_missing)} must be set: the production settings have no defaults for them.")
CSRF_TRUSTED_ORIGINS = csrf_trusted_origins(PUBLIC_BASE_URL)

# SECURE_PROXY_SSL_HEADER comes from TRUST_X_FORWARDED_PROTO (base): behind a TLS-terminating
# proxy that sets X-Forwarded-Proto, set it to true, or the HTTPS redirect below loops.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Load balancers probe /healthz over plain HTTP: answer it instead of redirecting.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
# The schema and Swagger UI need an API key or a logged-in session unless this is true.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=False)
