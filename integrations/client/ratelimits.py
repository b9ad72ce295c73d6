"""How long a provider asks us to wait, from its answer's headers.

`Retry-After` (seconds or an HTTP date), else the IETF `RateLimit-Reset` (seconds from
now) or `X-RateLimit-Reset` (seconds from now, or a Unix time when it looks like one).
The rate limiter (`hooks.before_call`) can feed the same figure back into its bucket.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

EPOCH_THRESHOLD = 1_000_000_000  # a reset larger than this is a Unix time, not a delta


def _number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait before the next call, or None when the answer does not say."""
    value = headers.get("Retry-After")
    if value:
        number = _number(value)
        if number is not None:
            return number
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    for name in ("RateLimit-Reset", "X-RateLimit-Reset"):
        number = _number(headers.get(name) or "")
        if number is not None:
            return max(0.0, number - time.time()) if number > EPOCH_THRESHOLD else number
    return None
