"""Free/busy arithmetic, no provider and no database: merge busy intervals per person and
find the slots free for everyone within a window."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime


def merge(intervals: Iterable[Interval], *, window: Interval | None = None) -> list[Interval]:
    """Sorted, overlapping or touching intervals joined, clipped to `window`."""
    clipped = []
    for interval in intervals:
        start, end = interval.start, interval.end
        if window is not None:
            start, end = max(start, window.start), min(end, window.end)
        if end > start:
            clipped.append(Interval(start, end))
    merged: list[Interval] = []
    for interval in sorted(clipped):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


def common_free(busy: Iterable[list[Interval]], window: Interval, *, min_minutes: int = 0) -> list[Interval]:
    """The parts of `window` when nobody is busy, at least `min_minutes` long."""
    everyone = merge((interval for person in busy for interval in person), window=window)
    free: list[Interval] = []
    cursor = window.start
    for interval in everyone:
        if interval.start > cursor:
            free.append(Interval(cursor, interval.start))
        cursor = max(cursor, interval.end)
    if cursor < window.end:
        free.append(Interval(cursor, window.end))
    least = timedelta(minutes=min_minutes)
    return [slot for slot in free if slot.end - slot.start >= least]


def zone(name: str) -> ZoneInfo:
    """An IANA time zone; ValueError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Unknown time zone {name!r}: use an IANA name such as Europe/Paris.") from None


def parse_instant(value: str, default_zone: ZoneInfo) -> datetime:
    """An RFC 3339 time (Google: `2026-03-02T09:00:00Z`) or a Graph local time with up to
    seven fractional digits (`2026-03-02T09:00:00.0000000`) read in `default_zone`."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, sep, rest = text.partition(".")
    if sep:  # fractional seconds: at most six digits for fromisoformat
        digits = "".join(c for c in rest if c.isdigit())
        text = main + "." + digits[:6].ljust(6, "0") + rest[len(digits) :]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_zone)
    return parsed


def local(value: datetime, tz: ZoneInfo) -> str:
    """`value` as wall-clock time in `tz`, no offset (Graph's dateTimeTimeZone)."""
    return value.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")


def rfc3339(value: datetime, tz: ZoneInfo | None = None) -> str:
    return value.astimezone(tz or UTC).isoformat(timespec="seconds")
