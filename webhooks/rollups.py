"""Hourly rollups per webhook: what the stats endpoint reads instead of the logs.

One `WebhookHourlyStats` row per webhook and hour (UTC) holds the attempts started in that
hour by outcome, the sum of their durations, and two histograms: attempt duration, and
end-to-end latency (event created → `delivered_at`, recorded once per delivery, in the hour
of its first success). The engine adds a batch's attempts to the rows in the same transaction as their
logs (`add_outcomes`, called by webhooks/engine/store.py), with one
`INSERT ... ON CONFLICT (webhook_id, hour) DO UPDATE SET x = x + EXCLUDED.x`: concurrent
workers only ever add, so no increment is lost and the rollups are never stale.

Percentiles are estimated from the histograms (`percentile`): linear interpolation inside
the bucket holding the rank. Buckets grow by 1.5x, so an estimate is within that bucket.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection

from common.db import prepared_cursor

#: upper bounds (ms) of the attempt-duration buckets: 0.25 ms x 1.5^i, 0.25 ms to about 6 min;
#: a last bucket holds the slower ones.
DURATION_BOUNDS_MS: tuple[float, ...] = tuple(0.25 * 1.5**i for i in range(36))
#: upper bounds (ms) of the end-to-end latency buckets: 1 ms x 1.5^i, 1 ms to about 2 days.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(1.0 * 1.5**i for i in range(48))

DURATION_COLUMNS = tuple(f"d{i:02}" for i in range(len(DURATION_BOUNDS_MS) + 1))
LATENCY_COLUMNS = tuple(f"l{i:02}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
COUNT_COLUMNS = ("succeeded", "failed", "duration_ms_sum", "delivered", "latency_ms_sum")
COLUMNS = COUNT_COLUMNS + DURATION_COLUMNS + LATENCY_COLUMNS
TABLE = "webhook_hourly_stats"


def bucket(value: float, bounds: Sequence[float]) -> int:
    """The index of the bucket holding `value` (upper bounds inclusive)."""
    return bisect.bisect_left(bounds, value)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def percentile(counts: Sequence[int], bounds: Sequence[float], fraction: float) -> float | None:
    """The `fraction` quantile of a histogram, interpolated inside its bucket; None if empty.
    In the last (unbounded) bucket, its lower bound."""
    total = sum(counts)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(bounds):
                return round(bounds[-1], 3)
            lower = bounds[index - 1] if index else 0.0
            return round(lower + (bounds[index] - lower) * (rank - seen) / count, 3)
        seen += count
    return round(bounds[-1], 3)


@dataclass
class HourCounts:
    succeeded: int = 0
    failed: int = 0
    duration_ms_sum: float = 0.0
    delivered: int = 0
    latency_ms_sum: float = 0.0
    durations: list[int] = field(default_factory=lambda: [0] * len(DURATION_COLUMNS))
    latencies: list[int] = field(default_factory=lambda: [0] * len(LATENCY_COLUMNS))

    def add_attempt(self, *, success: bool, duration_ms: float) -> None:
        if success:
            self.succeeded += 1
        else:
            self.failed += 1
        self.duration_ms_sum += duration_ms
        self.durations[bucket(duration_ms, DURATION_BOUNDS_MS)] += 1

    def add_latency(self, latency_ms: float) -> None:
        self.delivered += 1
        self.latency_ms_sum += latency_ms
        self.latencies[bucket(latency_ms, LATENCY_BOUNDS_MS)] += 1

    def values(self) -> list[float]:
        counts = [self.succeeded, self.failed, self.duration_ms_sum, self.delivered, self.latency_ms_sum]
        return [*counts, *self.durations, *self.latencies]


Rollup = dict[tuple, HourCounts]  # (webhook_id, hour) -> counts


def add(rollup: Rollup) -> None:
    """Add `rollup` to the stored rows, atomically (one upsert that increments). Rows are
    written in (webhook, hour) order so that concurrent batches cannot deadlock."""
    if not rollup:
        return
    from .models import WebhookHourlyStats

    keys = sorted(rollup, key=lambda key: (str(key[0]), key[1]))
    rows = [rollup[key].values() for key in keys]
    if connection.vendor == "postgresql":
        webhooks, hours = [key[0] for key in keys], [key[1] for key in keys]
        with prepared_cursor() as cursor:
            cursor.execute(_upsert_sql(), [webhooks, hours, *(list(column) for column in zip(*rows, strict=True))])
        return
    # Only the columns this batch moves: a batch touches few buckets.
    used = [i for i, column in enumerate(COLUMNS) if any(row[i] for row in rows)]
    columns = [COLUMNS[i] for i in used]
    webhook_field = WebhookHourlyStats._meta.get_field("webhook")
    hour_field = WebhookHourlyStats._meta.get_field("hour")
    params: list = []
    for key, row in zip(keys, rows, strict=True):
        params.append(webhook_field.get_db_prep_value(key[0], connection))
        params.append(hour_field.get_db_prep_value(key[1], connection))
        params.extend(row[i] for i in used)
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in ("webhook_id", "hour", *columns))
    placeholders = ", ".join(["(" + ", ".join(["%s"] * (len(columns) + 2)) + ")"] * len(rows))
    sets = ", ".join(f"{quote(c)} = {quote(TABLE)}.{quote(c)} + EXCLUDED.{quote(c)}" for c in columns)
    # The names are ours, the values parameters.
    sql = (
        f"INSERT INTO {quote(TABLE)} ({names}) VALUES {placeholders} "  # noqa: S608
        f"ON CONFLICT (webhook_id, hour) DO UPDATE SET {sets}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@functools.cache
def _upsert_sql() -> str:
    """PostgreSQL: `add`'s upsert with every column, one array each (`unnest`), so that one
    text serves every batch and is prepared once per connection. (`unnest` takes at most 100
    arrays: PostgreSQL's limit on a function's arguments.)"""
    from .models import WebhookHourlyStats

    quote = connection.ops.quote_name
    types = {f.column: f.db_type(connection) for f in WebhookHourlyStats._meta.concrete_fields}
    names = ("webhook_id", "hour", *COLUMNS)
    arrays = ", ".join(f"%s::{types[name]}[]" for name in names)
    sets = ", ".join(f"{quote(c)} = {quote(TABLE)}.{quote(c)} + EXCLUDED.{quote(c)}" for c in COLUMNS)
    columns = ", ".join(quote(name) for name in names)
    # The names are ours, the values parameters.
    return (
        f"INSERT INTO {quote(TABLE)} ({columns}) SELECT * FROM unnest({arrays}) "  # noqa: S608
        f"ON CONFLICT (webhook_id, hour) DO UPDATE SET {sets}"
    )


def add_outcomes(outcomes: Iterable, *, now: datetime) -> None:
    """Roll up a batch's recorded attempts (`webhooks.engine.policy.Outcome`s). A success
    of a delivery not delivered before also records its end-to-end latency, `now` (its
    `delivered_at`) minus the event's creation."""
    rollup: Rollup = {}
    for outcome in outcomes:
        delivery = outcome.delivery
        counts = rollup.setdefault((delivery.webhook_id, hour_of(outcome.started_at)), HourCounts())
        counts.add_attempt(success=outcome.success, duration_ms=round(outcome.duration_ms, 3))  # as logged
        if outcome.success and delivery.delivered_at is None:
            delivered = rollup.setdefault((delivery.webhook_id, hour_of(now)), HourCounts())
            delivered.add_latency(max((now - delivery.event.created_at).total_seconds() * 1000, 0.0))
    add(rollup)


def _bucket_sums(field_name: str, bounds: Sequence[float], columns: Sequence[str]) -> dict:
    from django.db.models import Case, IntegerField, Q, Sum, Value, When

    sums = {}
    for index, column in enumerate(columns):
        condition = Q()
        if index:
            condition &= Q(**{f"{field_name}__gt": bounds[index - 1]})
        if index < len(bounds):
            condition &= Q(**{f"{field_name}__lte": bounds[index]})
        sums[column] = Sum(Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField()))
    return sums


def backfill(apps, *, batch_size: int = 2000) -> int:
    """Rebuild every webhook's rollups from the logs (attempts) and deliveries (latency) in
    the database: one grouped query over the logs, one pass over delivered deliveries.
    Deliveries that succeeded before `delivered_at` existed get it from `finished_at`.
    Used by migration 0006 (with its historical models) and by the bench data loader;
    returns the number of rows written. Replaces existing rows."""
    from django.db.models import Count, F, Q, Sum
    from django.db.models.functions import TruncHour

    log_model = apps.get_model("webhooks", "WebhookLog")
    delivery_model = apps.get_model("webhooks", "Delivery")
    stats_model = apps.get_model("webhooks", "WebhookHourlyStats")
    delivery_model.objects.filter(state="succeeded", delivered_at__isnull=True).update(delivered_at=F("finished_at"))
    rollup: Rollup = {}
    grouped = (
        log_model.objects.annotate(bucket_hour=TruncHour("created_at"))
        .values("webhook_id", "bucket_hour")
        .order_by()
        .annotate(
            succeeded=Count("id", filter=Q(success=True)),
            failed=Count("id", filter=Q(success=False)),
            duration_ms_sum=Sum("duration_ms"),
            **_bucket_sums("duration_ms", DURATION_BOUNDS_MS, DURATION_COLUMNS),
        )
    )
    for row in grouped:
        counts = rollup.setdefault((row["webhook_id"], hour_of(row["bucket_hour"])), HourCounts())
        counts.succeeded, counts.failed = row["succeeded"], row["failed"]
        counts.duration_ms_sum = row["duration_ms_sum"] or 0.0
        counts.durations = [row[column] for column in DURATION_COLUMNS]
    if connection.vendor == "postgresql":
        _latencies_in_sql(rollup)
    else:
        delivered = (
            delivery_model.objects.filter(delivered_at__isnull=False)
            .values_list("webhook_id", "delivered_at", "event__created_at")
            .iterator(chunk_size=batch_size)
        )
        for webhook_id, delivered_at, created_at in delivered:
            counts = rollup.setdefault((webhook_id, hour_of(delivered_at)), HourCounts())
            counts.add_latency(max((delivered_at - created_at).total_seconds() * 1000, 0.0))
    stats_model.objects.all().delete()
    rows = []
    for (webhook_id, hour), counts in rollup.items():
        values = dict(zip(COLUMNS, counts.values(), strict=True))
        rows.append(stats_model(webhook_id=webhook_id, hour=hour, **values))
    stats_model.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def _latencies_in_sql(rollup: Rollup) -> None:
    """PostgreSQL: the latency histogram grouped in the database (millions of deliveries).
    date_trunc is in the session's time zone, which Django sets to UTC."""
    buckets = []
    params: list[float] = []
    for index in range(len(LATENCY_COLUMNS)):
        conditions = []
        if index:
            conditions.append("latency > %s")
            params.append(LATENCY_BOUNDS_MS[index - 1])
        if index < len(LATENCY_BOUNDS_MS):
            conditions.append("latency <= %s")
            params.append(LATENCY_BOUNDS_MS[index])
        buckets.append(f"SUM(CASE WHEN {' AND '.join(conditions)} THEN 1 ELSE 0 END)")
    sql = f"""
        SELECT webhook_id, date_trunc('hour', delivered_at), COUNT(*), SUM(latency), {", ".join(buckets)}
        FROM (
            SELECT d.webhook_id, d.delivered_at,
                   GREATEST(EXTRACT(EPOCH FROM (d.delivered_at - e.created_at))::float8 * 1000, 0) AS latency
            FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
            WHERE d.delivered_at IS NOT NULL
        ) AS delivered
        GROUP BY 1, 2
    """  # noqa: S608 (no input in it)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for webhook_id, hour, delivered, latency_sum, *latencies in cursor.fetchall():
            counts = rollup.setdefault((webhook_id, hour_of(hour)), HourCounts())
            counts.delivered, counts.latency_ms_sum, counts.latencies = delivered, latency_sum, list(latencies)
