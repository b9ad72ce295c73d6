"""Settings of the webhooks app, read lazily (on each call) so tests can override them.

One function per setting, its default written once (the shape of `common/app_settings.py`).
"""

from __future__ import annotations

from common.app_settings import allow_private_urls as _allow_private_urls
from common.app_settings import setting

# Delay before retry n (1-based): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; the last repeats.
DEFAULT_RETRY_DELAYS = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600]


def allow_private_urls() -> bool:
    """Targets may be on loopback/private networks: `ALLOW_PRIVATE_URLS` (deprecated alias
    `WEBHOOKS_ALLOW_PRIVATE_URLS`)."""
    return _allow_private_urls("WEBHOOKS_ALLOW_PRIVATE_URLS")


def request_timeout() -> float:
    """Seconds for one delivery request (connect and read)."""
    return float(setting("WEBHOOKS_TIMEOUT", 15))


def retry_delays() -> list[float]:
    """Seconds before each retry (`DEFAULT_RETRY_DELAYS` when empty); the last one repeats."""
    delays = setting("WEBHOOKS_RETRY_DELAYS", None) or DEFAULT_RETRY_DELAYS
    return [float(d) for d in delays]


def disable_after_failures() -> int:
    """Consecutive failed deliveries after which the engine disables a webhook."""
    return int(setting("WEBHOOKS_DISABLE_AFTER_FAILURES", 15))


def log_retention_days() -> int:
    """Delivery logs older than this are pruned."""
    return int(setting("WEBHOOKS_LOG_RETENTION_DAYS", 30))


def batch_size() -> int:
    """Deliveries claimed (and sent concurrently) by one task at a time. A claim costs the
    same few statements whatever its size (tests/webhooks/engine/test_store.py)."""
    return int(setting("WEBHOOKS_BATCH_SIZE", 100))


def send_concurrency() -> int:
    """Deliveries sent at once by one task (threads). The loop claims again as slots free,
    so a claim holds about half of them (bench/README.md, "Engine CPU")."""
    return int(setting("WEBHOOKS_SEND_CONCURRENCY", 100))


def lease_seconds() -> float:
    """How long a claim lasts; must outlive a whole batch of sends (timeouts included)."""
    default = request_timeout() * -(-batch_size() // send_concurrency()) * 2 + 30
    return float(setting("WEBHOOKS_LEASE_SECONDS", default))


def drain_seconds() -> float:
    """How long one delivery task keeps claiming batches while a backlog remains."""
    return float(setting("WEBHOOKS_DRAIN_SECONDS", 20))


def response_excerpt_bytes() -> int:
    """Bytes of a receiver's answer kept in the delivery log (fixed)."""
    return 4096


def max_payload_bytes() -> int:
    """Largest event payload accepted, in bytes of JSON."""
    return int(setting("WEBHOOKS_MAX_PAYLOAD_BYTES", 256 * 1024))


def secret_overlap_hours() -> int:
    """Hours the previous signing secret stays valid after a rotation (fixed)."""
    return 24


def user_agent() -> str:
    """User-Agent of every delivery request."""
    return str(setting("WEBHOOKS_USER_AGENT", "IntegrationFramework-Webhooks/1.0"))


def wakeups() -> bool:
    """Whether this process arms wake-up timers for deliveries due later."""
    return bool(setting("WEBHOOKS_WAKEUPS", True))


def ca_bundle() -> str | bool:
    """What verifies receivers' TLS certificates: a PEM bundle path, or True (certifi)."""
    return str(setting("WEBHOOKS_CA_BUNDLE", None) or "") or True
