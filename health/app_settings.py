"""Settings of the health app, read lazily (on each call) so tests can override them.

One function per setting, its default written once (the shape of `common/app_settings.py`).
"""

from __future__ import annotations

import math

from common.app_settings import allow_private_urls as _allow_private_urls
from common.app_settings import setting, setting_int


def interval_minutes() -> int:
    """How often the scheduled run checks every monitored integration."""
    return max(1, int(setting("HEALTH_CHECK_INTERVAL_MINUTES", 5)))


def timeout() -> float:
    """Seconds allowed for one check's request (connect and read)."""
    return float(setting("HEALTH_CHECK_TIMEOUT", 5.0))


def max_response_bytes() -> int:
    """Decoded bytes a check reads of an answer; a longer one is `unhealthy` (answer too large)."""
    return max(1, int(setting("HEALTH_CHECK_MAX_RESPONSE_BYTES", 1024 * 1024)))


def slow_ms() -> float:
    """A 2xx answer slower than this (milliseconds) is `degraded`."""
    return float(setting("HEALTH_CHECK_SLOW_MS", 2000))


def saml_cert_expiry_warning_days() -> int:
    """A SAML certificate (the IdP's signing one, the bearer grant's own) expiring within this
    many days makes its integration `degraded`; once expired it is `unhealthy`."""
    return max(0, setting_int("SAML_CERT_EXPIRY_WARNING_DAYS", 30, environ=True))


def unhealthy_threshold() -> int:
    """Consecutive unhealthy checks that put an active integration into `error`."""
    return max(1, int(setting("HEALTH_UNHEALTHY_THRESHOLD", 3)))


def concurrency() -> int:
    """Checks running at once in one run (threads)."""
    return max(1, int(setting("HEALTH_CHECK_CONCURRENCY", 50)))


def batch_size() -> int:
    """Integrations claimed per step of a run."""
    return max(1, int(setting("HEALTH_CHECK_BATCH_SIZE", 200)))


def lease_seconds() -> float:
    """How long a claim lasts: a whole batch of checks, token refreshes and timeouts included."""
    from integrations import app_settings as integration_settings

    rounds = math.ceil(batch_size() / concurrency())
    default = (timeout() + integration_settings.http_timeout()) * rounds + 30
    return float(setting("HEALTH_CHECK_LEASE_SECONDS", default))


def history_retention_days() -> int:
    """Check history older than this is pruned."""
    return int(setting("HEALTH_HISTORY_RETENTION_DAYS", 30))


def allow_private_urls() -> bool:
    """Checks may connect to loopback/private addresses (a custom `health_check_url` on 127.0.0.1):
    `ALLOW_PRIVATE_URLS` (deprecated aliases `HEALTH_`, `INTEGRATIONS_`, `WEBHOOKS_ALLOW_PRIVATE_URLS`)."""
    return _allow_private_urls(
        "HEALTH_ALLOW_PRIVATE_URLS", "INTEGRATIONS_ALLOW_PRIVATE_URLS", "WEBHOOKS_ALLOW_PRIVATE_URLS"
    )


def heartbeat_max_age_seconds() -> float:
    """`/healthz` wants a cluster heartbeat younger than this."""
    return float(setting("HEALTHZ_HEARTBEAT_MAX_AGE_SECONDS", 180))


def user_agent() -> str:
    """User-Agent of every check request."""
    return str(setting("HEALTH_USER_AGENT", "IntegrationFramework-Health/1.0"))
