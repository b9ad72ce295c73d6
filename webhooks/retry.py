"""When to try a failed delivery again (SPEC §4)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.utils import timezone

# Delay before retry n (1-based): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; the last repeats.
RETRY_DELAYS = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600]
JITTER = 0.2
MAX_RETRY_AFTER = timedelta(hours=24)


def retry_delay(retry_number: int, *, rng: random.Random | None = None) -> timedelta:
    base = RETRY_DELAYS[min(retry_number, len(RETRY_DELAYS)) - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return timedelta(seconds=base * factor)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date, bounded to a day; None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    now = now or timezone.now()
    delay: timedelta | None
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        delay = when - now
    if delay <= timedelta(0):
        return None
    return min(delay, MAX_RETRY_AFTER)


def next_attempt_time(*, now: datetime, retry_number: int, retry_after: timedelta | None) -> datetime:
    """The schedule's delay, or the receiver's `Retry-After` when that is later."""
    delay = retry_delay(retry_number)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return now + delay
