"""Settings of the integrations app, read lazily (on each call) so tests can override them.

One function per setting, its default written once (the shape of `common/app_settings.py`).
Values come from Django settings first, then the environment (provider credentials such as
`GREENHOUSE_CLIENT_ID` are not declared in the settings modules), then the default.
"""

from __future__ import annotations

from datetime import timedelta

from common.app_settings import allow_private_urls as _allow_private_urls
from common.app_settings import setting, setting_int

CALLBACK_PATH = "/api/integrations/oauth/callback/"


def _str(name: str, default: str = "") -> str:
    return str(setting(name, default, environ=True)).strip()


def _int(name: str, default: int) -> int:
    return setting_int(name, default, environ=True)


def public_base_url() -> str:
    """This service's public origin, for OAuth redirect URIs."""
    return _str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


def client_id(prefix: str) -> str:
    """The OAuth client id of a provider (`<PREFIX>_CLIENT_ID`), empty when unset."""
    return _str(f"{prefix}_CLIENT_ID") if prefix else ""


def client_secret(prefix: str) -> str:
    """The OAuth client secret of a provider (`<PREFIX>_CLIENT_SECRET`), empty when unset."""
    return _str(f"{prefix}_CLIENT_SECRET") if prefix else ""


def redirect_uri(prefix: str) -> str:
    """`<PREFIX>_REDIRECT_URI`, else our public callback URL."""
    explicit = _str(f"{prefix}_REDIRECT_URI") if prefix else ""
    return explicit or public_base_url() + CALLBACK_PATH


def allow_private_urls() -> bool:
    """Endpoints (token, health-check URLs) may be on loopback/private networks:
    `ALLOW_PRIVATE_URLS` (deprecated aliases `INTEGRATIONS_`, then `WEBHOOKS_ALLOW_PRIVATE_URLS`)."""
    return _allow_private_urls("INTEGRATIONS_ALLOW_PRIVATE_URLS", "WEBHOOKS_ALLOW_PRIVATE_URLS")


def http_timeout() -> float:
    """Seconds for every outbound OAuth request (connect and read)."""
    return float(_int("INTEGRATIONS_HTTP_TIMEOUT", 10))


def state_ttl() -> timedelta:
    """How long an OAuth `state` stays valid."""
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


def max_response_bytes() -> int:
    """Decoded bytes read of a provider's answer (token exchange and refresh, and every later
    call through `integrations.http`); a longer answer fails as too large (502)."""
    return max(1, _int("INTEGRATIONS_MAX_RESPONSE_BYTES", 256 * 1024))


def proxy_max_response_bytes() -> int:
    """Decoded bytes the REST proxy streams of a provider's answer (`integrations/api/proxy.py`):
    a Content-Length over it is a 502, a longer body without one is cut there."""
    return max(1, _int("INTEGRATIONS_PROXY_MAX_RESPONSE_BYTES", 25 * 1024 * 1024))


def issue_open_after() -> int:
    """Detections in a row that open a transient connection issue (provider unavailable, rate limited)."""
    return max(1, _int("INTEGRATION_ISSUE_OPEN_AFTER", 3))


def issue_resolve_after() -> int:
    """Observations in a row without the problem that resolve an open connection issue."""
    return max(1, _int("INTEGRATION_ISSUE_RESOLVE_AFTER", 3))


# --- rate limits and the call log (integrations/ratelimit.py, integrations/calllog.py) ---


def rate_limits_enabled() -> bool:
    """Whether provider calls wait on rate limits (the test settings turn it off)."""
    return bool(setting("INTEGRATIONS_RATE_LIMITS_ENABLED", True))


def rate_limit_max_wait_seconds() -> float:
    """How long a call may wait for its rate limit; beyond it the call is refused
    (`RateLimitExceeded`, with `retry_after`)."""
    return max(0.0, float(setting("INTEGRATIONS_RATE_LIMIT_MAX_WAIT_SECONDS", 10, environ=True)))


def rate_limit_max_pause_seconds() -> float:
    """The longest pause a provider's Retry-After or reset header can impose on a bucket."""
    return max(0.0, float(setting("INTEGRATIONS_RATE_LIMIT_MAX_PAUSE_SECONDS", 3600, environ=True)))


def rate_limit_redis_url() -> str:
    """Where the shared buckets live: `INTEGRATIONS_RATE_LIMIT_REDIS_URL`, else `REDIS_URL`;
    empty: in the database (table integration_rate_limit_buckets)."""
    return _str("INTEGRATIONS_RATE_LIMIT_REDIS_URL") or str(setting("REDIS_URL", "") or "")


def call_log_enabled() -> bool:
    """Whether provider calls are recorded (the call log and usage)."""
    return bool(setting("INTEGRATIONS_CALL_LOG_ENABLED", True))


def call_log_background() -> bool:
    """Whether a background thread flushes the call log; when false (the test settings) the
    buffer is written only by `calllog.flush()` and at exit."""
    return bool(setting("INTEGRATIONS_CALL_LOG_BACKGROUND", True))


def call_log_flush_seconds() -> float:
    """The background thread writes buffered call records at least this often."""
    return max(0.05, float(setting("INTEGRATIONS_CALL_LOG_FLUSH_SECONDS", 1.0)))


def call_log_batch_size() -> int:
    """Records written per INSERT; a buffer this full is flushed at once."""
    return max(1, int(setting("INTEGRATIONS_CALL_LOG_BATCH_SIZE", 500)))


def call_log_max_buffer() -> int:
    """Records kept in memory while the database is slow or down; newer ones are dropped."""
    return max(1, int(setting("INTEGRATIONS_CALL_LOG_MAX_BUFFER", 50_000)))


def call_log_retention_days() -> int:
    """Call-log rows older than this are pruned (`prune_provider_calls`, daily schedule)."""
    return _int("INTEGRATIONS_CALL_LOG_RETENTION_DAYS", 30)


# --- the provider API client (integrations/client) ---------------------------------------


def client_retries() -> int:
    """Retries of an idempotent call after a 429/502/503/504 or a connection error."""
    return max(0, _int("INTEGRATIONS_CLIENT_RETRIES", 2))


def client_retry_backoff_ms() -> int:
    """Base wait before a retry (doubled each time, full jitter) when no Retry-After says otherwise."""
    return max(0, _int("INTEGRATIONS_CLIENT_RETRY_BACKOFF_MS", 500))


def client_max_retry_wait() -> float:
    """The longest Retry-After the client waits before retrying; a longer one raises RateLimited."""
    return float(max(0, _int("INTEGRATIONS_CLIENT_MAX_RETRY_WAIT_SECONDS", 10)))


def client_base_url_ttl() -> int:
    """Seconds a discovered API base URL (DocuSign userinfo) is kept in memory."""
    return max(0, _int("INTEGRATIONS_CLIENT_BASE_URL_TTL", 3600))


def client_issue_check_ttl() -> int:
    """Seconds a process trusts its knowledge of whether an integration has an active
    transient issue to clear (one indexed query per integration and process per period)."""
    return max(0, _int("INTEGRATIONS_CLIENT_ISSUE_CHECK_TTL", 60))
