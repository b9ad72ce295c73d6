"""Usage of an integration from its call log: calls, errors, 429s and latency percentiles,
in total, by endpoint and by hour or day (`GET /api/integrations/{id}/usage/`).

Counts are aggregated in the database. Percentiles are PostgreSQL's `percentile_cont`
(linear interpolation); elsewhere (SQLite) the same interpolation is computed in Python over
the window's durations, at most `MAX_PERCENTILE_ROWS` of them (the newest).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from webhooks.selectors import PercentileCont

from .models import Integration, ProviderCall

Interval = Literal["hour", "day"]
INTERVALS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_SPAN: dict[str, timedelta] = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
#: the most buckets one answer holds (about 41 days by hour, 2.7 years by day)
MAX_BUCKETS = 1000
MAX_PERCENTILE_ROWS = 200_000
#: an error: no answer, an error kind, or a status of 400 and above
ERROR = Q(status__isnull=True) | Q(status__gte=400) | ~Q(error_kind="")
RATE_LIMITED = Q(status=429)


def floor_to(moment: datetime, interval: str) -> datetime:
    moment = moment.astimezone(UTC)
    if interval == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def usage_window(*, since: datetime | None, until: datetime | None, interval: str) -> tuple[datetime, datetime]:
    """The window asked for, defaults applied: until now, since one day (hour) or 30 days (day)."""
    until = until or timezone.now()
    since = since or until - DEFAULT_SPAN[interval]
    return since, until


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """percentile_cont: linear interpolation between the closest ranks."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    value = sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)
    return round(value, 3)


def _counts(**extra: Any) -> dict[str, Any]:
    return {
        "calls": Count("id"),
        "errors": Count("id", filter=ERROR),
        "rate_limited": Count("id", filter=RATE_LIMITED),
        "waited_ms": Sum("waited_ms"),
        **extra,
    }


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "calls": row.get("calls", 0),
        "errors": row.get("errors", 0),
        "rate_limited": row.get("rate_limited", 0),
        "waited_ms": round(row.get("waited_ms") or 0.0, 3),
        "p50_ms": None if row.get("p50") is None else round(row["p50"], 3),
        "p95_ms": None if row.get("p95") is None else round(row["p95"], 3),
    }


def integration_usage(
    *, integration: Integration, since: datetime, until: datetime, interval: str = "hour"
) -> dict[str, Any]:
    """Usage in [since, until): totals, per endpoint (most called first) and per bucket of
    `interval` (oldest first, empty buckets included). Four queries at most."""
    start = floor_to(since, interval)
    calls: QuerySet[ProviderCall] = ProviderCall.objects.filter(
        integration=integration,
        organization_id=integration.organization_id,
        created_at__gte=since,
        created_at__lt=until,
    )
    trunc = (TruncHour if interval == "hour" else TruncDay)("created_at", tzinfo=UTC)
    on_postgres = connection.vendor == "postgresql"
    percentiles: dict[str, Any] = (
        {"p50": PercentileCont("duration_ms", fraction=0.5), "p95": PercentileCont("duration_ms", fraction=0.95)}
        if on_postgres
        else {}
    )
    totals = calls.aggregate(**_counts(**percentiles))
    endpoints = list(calls.values("endpoint").annotate(**_counts(**percentiles)).order_by("-calls", "endpoint"))
    buckets = {
        row["bucket"]: row for row in calls.annotate(bucket=trunc).values("bucket").annotate(**_counts(**percentiles))
    }
    if not on_postgres:
        _percentiles_in_python(calls, interval, totals, endpoints, buckets)

    series = []
    moment = start
    while moment < until:
        series.append({"start": moment, **_figures(buckets.get(moment, {}))})
        moment += INTERVALS[interval]
    return {
        "since": since,
        "until": until,
        "interval": interval,
        "totals": _figures(totals),
        "endpoints": [{"endpoint": row["endpoint"], **_figures(row)} for row in endpoints],
        "buckets": series,
    }


def _percentiles_in_python(
    calls: QuerySet[ProviderCall],
    interval: str,
    totals: dict[str, Any],
    endpoints: list[dict[str, Any]],
    buckets: dict[datetime, dict[str, Any]],
) -> None:
    rows = calls.order_by("-created_at").values_list("created_at", "endpoint", "duration_ms")[:MAX_PERCENTILE_ROWS]
    every: list[float] = []
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    by_bucket: dict[datetime, list[float]] = defaultdict(list)
    for created_at, endpoint, duration in rows:
        every.append(duration)
        by_endpoint[endpoint].append(duration)
        by_bucket[floor_to(created_at, interval)].append(duration)
    for values, target in [(every, totals)] + [(by_endpoint[row["endpoint"]], row) for row in endpoints]:
        values.sort()
        target["p50"], target["p95"] = percentile(values, 0.5), percentile(values, 0.95)
    for moment, row in buckets.items():
        values = sorted(by_bucket.get(moment, []))
        row["p50"], row["p95"] = percentile(values, 0.5), percentile(values, 0.95)


def recent_hourly(*, integration: Integration, hours: int = 24) -> list[dict[str, Any]]:
    """The last `hours` hours by hour (the admin chart)."""
    until = timezone.now()
    usage = integration_usage(
        integration=integration, since=floor_to(until - timedelta(hours=hours - 1), "hour"), until=until
    )
    return usage["buckets"]


def status_class(status: int | None) -> str:
    """ "2xx" … "5xx" for an answer, "none" for a call that got no answer."""
    return "none" if status is None else f"{status // 100}xx"


STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "none")


def usage_by_status_class(
    *, integrations: list[Integration], since: datetime, until: datetime
) -> dict[Any, dict[str, int]]:
    """Calls in [since, until) per integration and status class, for many integrations at
    once: one grouped query (the portal's integrations page)."""
    result: dict[Any, dict[str, int]] = {i.pk: dict.fromkeys(STATUS_CLASSES, 0) for i in integrations}
    if not integrations:
        return result
    rows = (
        ProviderCall.objects.filter(
            integration__in=[i.pk for i in integrations],
            organization_id__in={i.organization_id for i in integrations},
            created_at__gte=since,
            created_at__lt=until,
        )
        .values("integration_id", "status")
        .annotate(calls=Count("id"))
        .order_by()
    )
    for row in rows:
        result[row["integration_id"]][status_class(row["status"])] += row["calls"]
    return result
