"""Settings shared by every environment.

Everything configurable is read from the environment (or an optional `.env`) with
django-environ; see README.md "Configuration" for the list.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from config.environment import Env, InvalidSetting, command_console_level, read_env_file

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Strict: a value that does not parse, or is out of range, stops the start with one line
# naming the variable (config/environment.py).
env = Env()
read_env_file()  # `.env` in the project root, or ENV_FILE; the environment wins

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
PUBLIC_BASE_URL = (env.str("PUBLIC_BASE_URL", default="") or "http://127.0.0.1:8000").rstrip("/")


def url_origin(url: str) -> str:
    """`scheme://host[:port]` of an absolute http(s) URL, as browsers send it in `Origin`."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in {"http", "https"} or not parts.hostname or port == -1:
        raise InvalidSetting(
            f"PUBLIC_BASE_URL must be an absolute http(s) URL, e.g. https://hire.example.com (got {url!r})."
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default_port else "")


def csrf_trusted_origins(public_base_url: str) -> list[str]:
    """The origin of PUBLIC_BASE_URL, then any extra origins in CSRF_TRUSTED_ORIGINS."""
    extra = env.list("CSRF_TRUSTED_ORIGINS", default=[])
    return list(dict.fromkeys([url_origin(public_base_url), *extra]))


CSRF_TRUSTED_ORIGINS = csrf_trusted_origins(PUBLIC_BASE_URL)
# Trust `X-Forwarded-Proto: https` (request.is_secure(), HTTPS redirects, secure cookies) only
# behind a proxy that sets or strips that header on every request: otherwise clients forge it.
TRUST_X_FORWARDED_PROTO = env.bool("TRUST_X_FORWARDED_PROTO", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUST_X_FORWARDED_PROTO else None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "common",
    "organizations",
    "webhooks",
    "integrations",
    "health",
    "observability",
    "portal",
    "django_htmx",
]

MIDDLEWARE = [
    # Outermost: a request id for every log line of the request and the X-Request-ID answer.
    "common.logs.RequestIdMiddleware",
    # Then: times and counts every request by its URL pattern (observability/middleware.py).
    "observability.middleware.HttpMetricsMiddleware",
    # Then: under /api/ every answer is JSON (413 for large bodies, no HTML or DEBUG pages).
    "common.api.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------
# SQLite by default; DATABASE_URL switches (e.g. postgres://user@host:5432/name, psycopg 3).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASE_VENDOR = "sqlite" if "sqlite" in DATABASES["default"]["ENGINE"] else "other"
if DATABASE_VENDOR == "sqlite":
    # IMMEDIATE transactions + WAL: writers queue on the lock instead of failing with
    # "database is locked" when the web process and django-q2 workers write at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0, minimum=0)
else:
    # Persistent connections: django-q2 closes "old" connections on every broker
    # operation, so CONN_MAX_AGE=0 would reconnect per task (docs/QUEUE.md).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a health check that sends nothing to a connection the
        # server still holds (common/postgresql/base.py): one round trip less per request.
        DATABASES["default"]["ENGINE"] = "common.postgresql"
    # The hot raw statements (common/db.py `prepared_cursor`) are prepared the 5th time a
    # connection runs them; off for a PgBouncer in transaction mode (it cannot keep them).
    # The ORM's queries bind on the client and are never prepared either way.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Login rate limiting (django-axes) ---------------------------------------------------
# AxesStandaloneBackend first: it refuses a locked-out username+IP before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15, minimum=1))
# Lock the pair, not the IP alone (one office behind NAT) nor the username alone (anyone could
# lock an admin out). The IP is REMOTE_ADDR: no forwarded header is trusted for it.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Credentials encryption -------------------------------------------------------------
# FERNET_KEYS: comma-separated; the first encrypts, all decrypt (rotation). Any string
# works as a key (fernet_fields derives a Fernet key from it with HKDF).
FERNET_KEYS = env.list("FERNET_KEYS", default=[])


def derived_fernet_key(secret_key: str) -> str:
    """A development-only key derived from SECRET_KEY (never used when DEBUG is off)."""
    digest = hashlib.sha256(f"fernet:{secret_key}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "organizations.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["organizations.permissions.IsOrganizationMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.api.parsers.JSONParser"],
    # DRF's, short-circuited for the usual `Accept` (common/api/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "common.api.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "common.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "common.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}

# /api/schema/ and /api/docs/ without authentication (production's default is false).
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=True)
# How deep objects and arrays may nest in a JSON body or event payload (common/api/parsers.py).
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32, minimum=1)
# Under /api/ a CSRF failure is a JSON 403; elsewhere Django's page.
CSRF_FAILURE_VIEW = "common.api.handlers.csrf_failure"

SPECTACULAR_SETTINGS = {
    "TITLE": "Integration framework API",
    "DESCRIPTION": (
        "Connect third-party services, monitor their health and deliver platform events "
        "to webhooks. Authenticate with `Authorization: Bearer <api key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Public while API_DOCS_PUBLIC is true, else an API key or a logged-in session is required.
    "SERVE_PERMISSIONS": ["common.api.permissions.ApiDocsAccess"],
    "SERVE_AUTHENTICATION": None,  # the API's own: API keys and sessions
    # validatorUrl: None: Swagger UI would otherwise send the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "validatorUrl": None},
    # Swagger UI's assets come from drf-spectacular-sidecar (static files), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One tag per app (common/api/schema.py picks it), in this order, described once here.
    "TAGS": [
        {"name": "organization", "description": "The organization a request acts for, and whether it may write."},
        {
            "name": "api-keys",
            "description": "The organization's API keys. Creating one returns the key once; it is stored hashed. "
            "DELETE revokes it.",
        },
        {
            "name": "integrations",
            "description": "Connections to third-party services (provider catalogue, OAuth 2.0 authorization, "
            "sync results). Credentials are write-only: reads show `credential_fields`, the stored key names.",
        },
        {"name": "health", "description": "Health of one integration: the latest checks, and a check run now."},
        {
            "name": "webhooks",
            "description": "Subscriptions to events, delivered signed (Standard Webhooks) with retries; their "
            "attempt logs, statistics, replay and recovery. The signing secret is returned only by create "
            "and rotate-secret.",
        },
        {
            "name": "events",
            "description": "The event catalogue, and triggering an event: it is delivered to every active "
            "webhook subscribed to it.",
        },
        {
            "name": "portal-links",
            "description": "Signed, single-use, expiring URLs that open the organization portal (/portal/) "
            "for one role, e.g. inside the platform's product.",
        },
    ],
    "ENUM_NAME_OVERRIDES": {
        "IntegrationStatusEnum": "integrations.models.Integration.Status",
        "HealthStatusEnum": "integrations.models.Integration.HealthStatus",
        "HealthCheckStatusEnum": "health.models.HealthCheck.Status",
        "ConnectionIssueKindEnum": "integrations.models.ConnectionIssue.Kind",
        "ConnectionIssueStatusEnum": "integrations.api.issues.LISTED_STATUSES",
        "ErrorTypeEnum": "common.api.exceptions.ERROR_TYPE_CHOICES",
    },
}

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# --- django-q2 --------------------------------------------------------------------------
# Always configure the broker explicitly: without one django-q2 silently uses local Redis.
# The database, not the broker, owns the state of anything that must not be lost
# (docs/QUEUE.md): tasks are carriers only, so they are not retried by the broker.
REDIS_URL = env.str("REDIS_URL", default="")
Q_TASK_TIMEOUT = env.int("Q_TASK_TIMEOUT", default=120, minimum=1)
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="integrations"),
    "workers": env.int("Q_WORKERS", default=2, minimum=1),
    "timeout": Q_TASK_TIMEOUT,
    # retry must exceed timeout plus time waiting in the local queue, or a slow task
    # runs twice (docs/QUEUE.md).
    "retry": Q_TASK_TIMEOUT * 3,
    "max_attempts": 1,
    "ack_failures": True,
    # -1: do not store successful results (each save otherwise scans the table under a lock).
    "save_limit": -1,
    "recycle": 20000,
    "max_rss": 512 * 1024,
    "catch_up": False,
    "label": "Task queue",
    "log_level": env.choice("Q_LOG_LEVEL", LOG_LEVELS, default="WARNING"),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["bulk"] = 10
    Q_CLUSTER["poll"] = 0.1

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = env.choice("LOG_LEVEL", LOG_LEVELS, default="INFO")
# text (default) or json: one JSON object per line with request_id, organization, event_id
# and delivery_id (common/logs.py; README.md "Operating", "Logs"). Both are redacted.
LOG_FORMAT = env.choice("LOG_FORMAT", ("text", "json"), default="text").lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "common.logs.ContextFilter"}},
    "formatters": {
        "text": {"()": "common.logs.TextFormatter"},
        "json": {"()": "common.logs.JsonFormatter"},
    },
    # One-shot management commands print their results on stdout and log only warnings
    # and errors (unless -v 2): see config/environment.py, command_console_level.
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
            "level": command_console_level(sys.argv) or "NOTSET",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # django-q2 logs as "django-q" (django_q/conf.py), not by its module name.
    "loggers": {"django-q": {"level": Q_CLUSTER["log_level"]}},
}

# --- Traces (optional) ---------------------------------------------------------------------
# OpenTelemetry, off by default: when off nothing of it is imported (common/tracing.py).
# The exporter takes the standard OTEL_EXPORTER_OTLP_* variables from the environment.
OTEL_ENABLED = env.bool("OTEL_ENABLED", default=False)
OTEL_TRACES_EXPORTER = env.choice("OTEL_TRACES_EXPORTER", ("otlp", "console", "none"), default="otlp").lower()
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="") or "integration-framework"


def otlp_exporter_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http.trace_exporter") is not None
    except ModuleNotFoundError:
        return False


if OTEL_ENABLED and OTEL_TRACES_EXPORTER == "otlp" and not otlp_exporter_installed():
    raise InvalidSetting(
        "OTEL_TRACES_EXPORTER=otlp (the default) needs the opentelemetry-exporter-otlp-proto-http package: "
        "install it, or set OTEL_TRACES_EXPORTER=console or none."
    )

# --- Outbound URLs ----------------------------------------------------------------------
# Every URL this service fetches (webhook targets, integration token/health-check URLs,
# health checks) must resolve to a public address unless this is true (development, tests).
ALLOW_PRIVATE_URLS = env.bool("ALLOW_PRIVATE_URLS", default=False)
# Deprecated per-app aliases: None unless set in the environment; while one is set it
# overrides ALLOW_PRIVATE_URLS for its app and a warning is logged (common/app_settings.py).
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=None)
INTEGRATIONS_ALLOW_PRIVATE_URLS = env.bool("INTEGRATIONS_ALLOW_PRIVATE_URLS", default=None)
HEALTH_ALLOW_PRIVATE_URLS = env.bool("HEALTH_ALLOW_PRIVATE_URLS", default=None)

# --- App tuning ---------------------------------------------------------------------------
# Read from the environment here so a bad value fails at start, naming the variable. Unset
# (None) means the app's default, written once in its app_settings.py; README.md lists them.
WEBHOOKS_TIMEOUT = env.float("WEBHOOKS_TIMEOUT", default=None, positive=True)
WEBHOOKS_DISABLE_AFTER_FAILURES = env.int("WEBHOOKS_DISABLE_AFTER_FAILURES", default=None, minimum=1)
WEBHOOKS_LOG_RETENTION_DAYS = env.int("WEBHOOKS_LOG_RETENTION_DAYS", default=None, minimum=1)
WEBHOOKS_BATCH_SIZE = env.int("WEBHOOKS_BATCH_SIZE", default=None, minimum=1)
WEBHOOKS_SEND_CONCURRENCY = env.int("WEBHOOKS_SEND_CONCURRENCY", default=None, minimum=1)
# Seconds before each retry; empty means docs/API.md §4's 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
WEBHOOKS_RETRY_DELAYS = env.list("WEBHOOKS_RETRY_DELAYS", cast=float, default=[], minimum=0)
WEBHOOKS_LEASE_SECONDS = env.float("WEBHOOKS_LEASE_SECONDS", default=None, positive=True)
WEBHOOKS_DRAIN_SECONDS = env.float("WEBHOOKS_DRAIN_SECONDS", default=None, minimum=0)
WEBHOOKS_MAX_PAYLOAD_BYTES = env.int("WEBHOOKS_MAX_PAYLOAD_BYTES", default=None, minimum=2)  # `{}` is 2
WEBHOOKS_USER_AGENT = env.str("WEBHOOKS_USER_AGENT", default=None)
WEBHOOKS_WAKEUPS = env.bool("WEBHOOKS_WAKEUPS", default=None)
# A PEM bundle of CAs that verify receivers' (and subscriber token endpoints') TLS
# certificates; unset: the certifi bundle requests ships (e.g. a private CA for mTLS receivers).
WEBHOOKS_CA_BUNDLE = env.str("WEBHOOKS_CA_BUNDLE", default=None)

INTEGRATIONS_HTTP_TIMEOUT = env.int("INTEGRATIONS_HTTP_TIMEOUT", default=None, minimum=1)
INTEGRATIONS_OAUTH_STATE_TTL = env.int("INTEGRATIONS_OAUTH_STATE_TTL", default=None, minimum=1)
INTEGRATIONS_TOKEN_REFRESH_MARGIN = env.int("INTEGRATIONS_TOKEN_REFRESH_MARGIN", default=None, minimum=0)
INTEGRATIONS_TOKEN_REFRESH_INTERVAL_MINUTES = env.int(
    "INTEGRATIONS_TOKEN_REFRESH_INTERVAL_MINUTES", default=None, minimum=1
)
INTEGRATIONS_REFRESH_BACKOFF_SECONDS = env.int("INTEGRATIONS_REFRESH_BACKOFF_SECONDS", default=None, minimum=1)
INTEGRATIONS_REFRESH_BACKOFF_MAX_SECONDS = env.int("INTEGRATIONS_REFRESH_BACKOFF_MAX_SECONDS", default=None, minimum=1)
INTEGRATIONS_MAX_RESPONSE_BYTES = env.int("INTEGRATIONS_MAX_RESPONSE_BYTES", default=None, minimum=1)
INTEGRATIONS_PROXY_MAX_RESPONSE_BYTES = env.int("INTEGRATIONS_PROXY_MAX_RESPONSE_BYTES", default=None, minimum=1)
# rate limits and the call log (integrations/ratelimit.py, calllog.py)
INTEGRATIONS_RATE_LIMIT_MAX_WAIT_SECONDS = env.float(
    "INTEGRATIONS_RATE_LIMIT_MAX_WAIT_SECONDS", default=None, minimum=0
)
INTEGRATIONS_RATE_LIMIT_MAX_PAUSE_SECONDS = env.float(
    "INTEGRATIONS_RATE_LIMIT_MAX_PAUSE_SECONDS", default=None, minimum=0
)
INTEGRATIONS_RATE_LIMIT_REDIS_URL = env.str("INTEGRATIONS_RATE_LIMIT_REDIS_URL", default=None)
INTEGRATIONS_RATE_LIMITS_ENABLED = env.bool("INTEGRATIONS_RATE_LIMITS_ENABLED", default=None)
INTEGRATIONS_CALL_LOG_ENABLED = env.bool("INTEGRATIONS_CALL_LOG_ENABLED", default=None)
INTEGRATIONS_CALL_LOG_BACKGROUND = env.bool("INTEGRATIONS_CALL_LOG_BACKGROUND", default=None)
INTEGRATIONS_CALL_LOG_FLUSH_SECONDS = env.float("INTEGRATIONS_CALL_LOG_FLUSH_SECONDS", default=None, positive=True)
INTEGRATIONS_CALL_LOG_BATCH_SIZE = env.int("INTEGRATIONS_CALL_LOG_BATCH_SIZE", default=None, minimum=1)
INTEGRATIONS_CALL_LOG_MAX_BUFFER = env.int("INTEGRATIONS_CALL_LOG_MAX_BUFFER", default=None, minimum=1)
INTEGRATIONS_CALL_LOG_RETENTION_DAYS = env.int("INTEGRATIONS_CALL_LOG_RETENTION_DAYS", default=None, minimum=1)
# the provider API client (integrations/client)
INTEGRATIONS_CLIENT_RETRIES = env.int("INTEGRATIONS_CLIENT_RETRIES", default=None, minimum=0)
INTEGRATIONS_CLIENT_RETRY_BACKOFF_MS = env.int("INTEGRATIONS_CLIENT_RETRY_BACKOFF_MS", default=None, minimum=0)
INTEGRATIONS_CLIENT_MAX_RETRY_WAIT_SECONDS = env.int(
    "INTEGRATIONS_CLIENT_MAX_RETRY_WAIT_SECONDS", default=None, minimum=0
)
INTEGRATIONS_CLIENT_BASE_URL_TTL = env.int("INTEGRATIONS_CLIENT_BASE_URL_TTL", default=None, minimum=0)
INTEGRATIONS_CLIENT_ISSUE_CHECK_TTL = env.int("INTEGRATIONS_CLIENT_ISSUE_CHECK_TTL", default=None, minimum=0)
# connection issues (integrations/issues.py)
INTEGRATION_ISSUE_OPEN_AFTER = env.int("INTEGRATION_ISSUE_OPEN_AFTER", default=None, minimum=1)
INTEGRATION_ISSUE_RESOLVE_AFTER = env.int("INTEGRATION_ISSUE_RESOLVE_AFTER", default=None, minimum=1)

HEALTH_CHECK_INTERVAL_MINUTES = env.int("HEALTH_CHECK_INTERVAL_MINUTES", default=None, minimum=1)
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=None, positive=True)
HEALTH_CHECK_MAX_RESPONSE_BYTES = env.int("HEALTH_CHECK_MAX_RESPONSE_BYTES", default=None, minimum=1)
HEALTH_CHECK_SLOW_MS = env.float("HEALTH_CHECK_SLOW_MS", default=None, positive=True)
HEALTH_UNHEALTHY_THRESHOLD = env.int("HEALTH_UNHEALTHY_THRESHOLD", default=None, minimum=1)
HEALTH_CHECK_CONCURRENCY = env.int("HEALTH_CHECK_CONCURRENCY", default=None, minimum=1)
HEALTH_CHECK_BATCH_SIZE = env.int("HEALTH_CHECK_BATCH_SIZE", default=None, minimum=1)
HEALTH_CHECK_LEASE_SECONDS = env.float("HEALTH_CHECK_LEASE_SECONDS", default=None, positive=True)
HEALTH_HISTORY_RETENTION_DAYS = env.int("HEALTH_HISTORY_RETENTION_DAYS", default=None, minimum=1)
HEALTHZ_HEARTBEAT_MAX_AGE_SECONDS = env.float("HEALTHZ_HEARTBEAT_MAX_AGE_SECONDS", default=None, positive=True)
HEALTH_USER_AGENT = env.str("HEALTH_USER_AGENT", default=None)
SAML_CERT_EXPIRY_WARNING_DAYS = env.int("SAML_CERT_EXPIRY_WARNING_DAYS", default=None, minimum=0)

# --- Metrics (/metrics, docs/METRICS.md) ----------------------------------------------------
# When set, /metrics requires `Authorization: Bearer <METRICS_TOKEN>`; unset, it is open.
METRICS_TOKEN = env.str("METRICS_TOKEN", default=None)

# Origins that may frame the portal (/portal/), e.g. https://app.example.com; empty: none may.
PORTAL_FRAME_ANCESTORS = env.list("PORTAL_FRAME_ANCESTORS", default=[])
# false: no counter or histogram is recorded (the DB gauges are still served).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=None)
# prometheus-client's own variable (read from the environment before it is imported): the
# directory where every process writes its values; /metrics sums them (docs/METRICS.md).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=None)
