"""Webhook settings, read lazily so tests can override them with `settings`."""

from __future__ import annotations

from django.conf import settings


def _get(name: str, default):
    return getattr(settings, name, default)


def allow_private_urls() -> bool:
    return bool(_get("WEBHOOKS_ALLOW_PRIVATE_URLS", False))


def request_timeout() -> float:
    return float(_get("WEBHOOKS_TIMEOUT", 15))


# Delay before retry n (1-based): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; the last repeats.
DEFAULT_RETRY_DELAYS = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600]


def retry_delays() -> list[float]:
    """Seconds before each retry (SPEC §4); the last one repeats beyond the list."""
    delays = _get("WEBHOOKS_RETRY_DELAYS", None) or DEFAULT_RETRY_DELAYS
    return [float(d) for d in delays]


def disable_after_failures() -> int:
    return int(_get("WEBHOOKS_DISABLE_AFTER_FAILURES", 15))


def log_retention_days() -> int:
    return int(_get("WEBHOOKS_LOG_RETENTION_DAYS", 30))


def batch_size() -> int:
    """Deliveries claimed (and sent concurrently) by one task at a time."""
    return int(_get("WEBHOOKS_BATCH_SIZE", 50))


def send_concurrency() -> int:
    return int(_get("WEBHOOKS_SEND_CONCURRENCY", 50))


def lease_seconds() -> float:
    """How long a claim lasts; must outlive a whole batch of sends (timeouts included)."""
    default = request_timeout() * -(-batch_size() // send_concurrency()) * 2 + 30
    return float(_get("WEBHOOKS_LEASE_SECONDS", default))


def drain_seconds() -> float:
    """How long one delivery task keeps claiming batches while a backlog remains."""
    return float(_get("WEBHOOKS_DRAIN_SECONDS", 20))


def response_excerpt_bytes() -> int:
    return 4096


def max_payload_bytes() -> int:
    return int(_get("WEBHOOKS_MAX_PAYLOAD_BYTES", 256 * 1024))


def secret_overlap_hours() -> int:
    return 24


def user_agent() -> str:
    return _get("WEBHOOKS_USER_AGENT", "IntegrationFramework-Webhooks/1.0")
