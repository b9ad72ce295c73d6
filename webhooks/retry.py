"""When to try a failed delivery again (docs/API.md §4)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.utils import timezone

from . import app_settings

JITTER = 0.2
MAX_RETRY_AFTER = timedelta(hours=24)


def retry_delay(retry_number: int, *, rng: random.Random | None = None) -> timedelta:
    delays = app_settings.retry_delays()
    base = delays[min(retry_number, len(delays)) - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return timedelta(seconds=base * factor)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date, bounded to a day; None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    now = now or timezone.now()
    delay: timedelta | None
    if value.isascii() and value.isdigit():
        if len(value) > 9:  # beyond a day anyway; avoid overflowing timedelta
            return MAX_RETRY_AFTER
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
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
