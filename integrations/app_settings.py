"""Settings of the integrations app, read lazily (on each call) so tests can override them.

Each value comes from Django settings first, then the environment, then a default.
"""

from __future__ import annotations

import os
from datetime import timedelta

from django.conf import settings

CALLBACK_PATH = "/api/integrations/oauth/callback/"


def _get(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return str(value).strip()


def _int(name: str, default: int) -> int:
    raw = _get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        return default


def public_base_url() -> str:
    return _get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


def client_id(prefix: str) -> str:
    return _get(f"{prefix}_CLIENT_ID") if prefix else ""


def client_secret(prefix: str) -> str:
    return _get(f"{prefix}_CLIENT_SECRET") if prefix else ""


def redirect_uri(prefix: str) -> str:
    explicit = _get(f"{prefix}_REDIRECT_URI") if prefix else ""
    return explicit or public_base_url() + CALLBACK_PATH


def allow_private_urls() -> bool:
    """Whether integration endpoints (token, health-check URLs) may be on loopback/private
    networks: `INTEGRATIONS_ALLOW_PRIVATE_URLS`, else `WEBHOOKS_ALLOW_PRIVATE_URLS`, else false."""
    value = getattr(settings, "INTEGRATIONS_ALLOW_PRIVATE_URLS", None)
    if value is None:
        value = getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_URLS", False)
    return bool(value)


def http_timeout() -> float:
    """Seconds for every outbound OAuth request (connect and read)."""
    return float(_int("INTEGRATIONS_HTTP_TIMEOUT", 10))


def state_ttl() -> timedelta:
    return timedelta(seconds=_int("INTEGRATIONS_OAUTH_STATE_TTL", 600))


def refresh_margin() -> timedelta:
    """Refresh a token that expires within this margin."""
    return timedelta(seconds=_int("INTEGRATIONS_TOKEN_REFRESH_MARGIN", 300))


def refresh_interval_minutes() -> int:
    """How often the proactive refresh schedule runs."""
    return max(1, _int("INTEGRATIONS_TOKEN_REFRESH_INTERVAL_MINUTES", 5))


def refresh_backoff(failures: int) -> timedelta:
    """Wait after the n-th consecutive transient refresh failure: 30 s doubling, at most 30 min."""
    base = _int("INTEGRATIONS_REFRESH_BACKOFF_SECONDS", 30)
    cap = _int("INTEGRATIONS_REFRESH_BACKOFF_MAX_SECONDS", 1800)
    return timedelta(seconds=min(cap, base * 2 ** max(0, failures - 1)))
