"""Reads, scoped to an organization."""

from __future__ import annotations

import functools
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, FloatField, QuerySet, Sum
from django.utils import timezone

from common.db import AnyOf, PreparedQuery, prepared_cursor, prepared_statements_enabled
from organizations.models import Organization

from . import rollups
from .models import Delivery, EventType, Webhook, WebhookHourlyStats, WebhookLog


def webhook_list(*, organization: Organization) -> QuerySet[Webhook]:
    # The mTLS key is never needed to list or show a webhook: not decrypted for reads.
    return Webhook.objects.filter(organization=organization).defer("client_certificate")


#: what the logs endpoint reads of its webhook (`webhook_get`)
WEBHOOK_LOG_FIELDS = ("id",)
#: ... and the stats endpoint (`webhook_stats`)
WEBHOOK_STATS_FIELDS = (
    "id",
    "success_count",
    "failure_count",
    "consecutive_failures",
    "last_success_at",
    "last_failure_at",
)


def webhook_get(*, organization: Organization, pk: uuid.UUID, fields: tuple[str, ...]) -> Webhook | None:
    """The organization's webhook `pk` with only `fields` loaded (no encrypted column is
    read or decrypted), or None. On PostgreSQL the query is compiled once per process and
    prepared once per connection (common/db.py `PreparedQuery`): the ORM's `get()` compiled
    it on every logs or stats request, and for stats read and decrypted the whole row (about
    2 ms of the 5 ms of CPU a stats request took, bench/README.md "Logs and stats CPU")."""
    if connection.vendor != "postgresql":
        return webhook_list(organization=organization).only(*fields).filter(pk=pk).first()
    found = _webhook_get_query(fields).rows(ids=[pk], organizations=[organization.pk])
    return found[0] if found else None


@functools.cache
def _webhook_get_query(fields: tuple[str, ...]) -> PreparedQuery:
    webhooks = Webhook.objects.filter(AnyOf("pk", "ids"), AnyOf("organization_id", "organizations"))
    return PreparedQuery(webhooks.order_by().only(*fields))


def event_type_list(*, organization: Organization) -> QuerySet[EventType]:
    return EventType.objects.filter(organization=organization).order_by("name")


def webhook_log_list(
    *,
    webhook: Webhook,
    success: bool | None = None,
    event: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[WebhookLog]:
    """A webhook's attempts, newest first. Filtered by the webhook alone (the caller found it
    in the organization): each filter then matches an index led by the webhook."""
    # No join: masking reads the payloads a page needs in one query of its own
    # (webhooks/masking.py `payloads_for`), and most pages need none.
    logs = WebhookLog.objects.filter(webhook=webhook)
    if success is not None:
        logs = logs.filter(success=success)
    if event:
        logs = logs.filter(event_type=event)
    if since:
        logs = logs.filter(created_at__gte=since)
    if until:
        logs = logs.filter(created_at__lte=until)
    return logs.order_by("-created_at", "-id")


#: what a page of logs reads of each row (`WebhookLogSerializer` shows all of it)
LOG_COLUMNS = (
    "id",
    "organization_id",
    "webhook_id",
    "delivery_id",
    "event_type",
    "attempt",
    "success",
    "response_status",
    "duration_ms",
    "error",
    "request_url",
    "custom_headers",
    "response_body",
    "created_at",
)


def webhook_log_page(
    *,
    webhook: Webhook,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
    success: bool | None = None,
    event: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Up to `limit` rows of `webhook_log_list(...)` strictly after the key `after`
    (`created_at`, `id`), as `.values(*LOG_COLUMNS)` dicts.

    On PostgreSQL one statement written out here, the same as the ORM's (predicates, order,
    the indexes they use), without its compiling and per-row converters: about 1.5 ms of
    CPU a page of 50 (bench/README.md "The logs page"); elsewhere the ORM's."""
    if connection.vendor != "postgresql":
        logs = webhook_log_list(webhook=webhook, success=success, event=event, since=since, until=until)
        if after is not None:
            logs = logs.filter(created_at__lte=after[0]).exclude(created_at=after[0], pk__gte=after[1])
        return list(logs.values(*LOG_COLUMNS)[:limit])
    # A bound on `created_at` (the partition key) lets the planner prune the daily partitions
    # when it plans with the values, so PostgreSQL keeps choosing such plans over the generic
    # one (whose estimate counts every partition) and plans each cursor page anew: 0.6-0.9 ms
    # with 38 days, against 0.03-0.07 ms for the generic plan, which prunes the same days at
    # executor startup. A prepared statement (common/db.py) therefore writes the bound as a
    # stable expression, which only the executor evaluates: after 5 custom plans of the whole
    # table (about 3 ms each) its generic plan is kept. Client binding keeps the plain value.
    bound = "(%s::timestamptz + interval '0')" if prepared_statements_enabled() else "%s"
    where: list[str] = ["webhook_id = %s"]
    params: list[Any] = [webhook.pk]
    for condition, value in (
        ("success = %s", success),
        ("event_type = %s", event or None),
        (f"created_at >= {bound}", since),
        (f"created_at <= {bound}", until),
    ):
        if value is not None:
            where.append(condition)
            params.append(value)
    if after is not None:
        where.append(f"created_at <= {bound} AND NOT (created_at = %s AND id >= %s)")
        params.extend([after[0], after[0], after[1]])
    sql = _log_page_sql(" AND ".join(where))
    with prepared_cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        rows = cursor.fetchall()
    headers = LOG_COLUMNS.index("custom_headers")
    decode = json.loads
    return [
        dict(zip(LOG_COLUMNS, (*row[:headers], decode(row[headers]), *row[headers + 1 :]), strict=True)) for row in rows
    ]


@functools.cache
def _log_page_sql(where: str) -> str:
    quote = connection.ops.quote_name
    fields = {field.attname: field.column for field in WebhookLog._meta.concrete_fields}
    columns = ", ".join(quote(fields[name]) for name in LOG_COLUMNS)
    table = quote(WebhookLog._meta.db_table)
    return f"SELECT {columns} FROM {table} WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %s"  # noqa: S608


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


#: the windows `GET .../stats/?window=` offers, in hours
STATS_WINDOWS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
#: `pending_deliveries` and `failed_deliveries` are counted up to this many (then they read as it)
STATS_COUNT_CAP = 10_000


def _rollup_stats(totals: dict, prefix: str) -> dict:
    succeeded, failed = totals[f"{prefix}_succeeded"] or 0, totals[f"{prefix}_failed"] or 0
    attempts = succeeded + failed
    durations = [totals[f"{prefix}_{column}"] or 0 for column in rollups.DURATION_COLUMNS]
    latencies = [totals[f"{prefix}_{column}"] or 0 for column in rollups.LATENCY_COLUMNS]
    delivered = totals[f"{prefix}_delivered"] or 0
    return {
        "attempts": attempts,
        "successes": succeeded,
        "failures": failed,
        "success_rate": round(succeeded / attempts, 4) if attempts else None,
        "mean_duration_ms": round(totals[f"{prefix}_duration_ms_sum"] / attempts, 3) if attempts else None,
        "p50_duration_ms": rollups.percentile(durations, rollups.DURATION_BOUNDS_MS, 0.5),
        "p95_duration_ms": rollups.percentile(durations, rollups.DURATION_BOUNDS_MS, 0.95),
        "delivered": delivered,
        "mean_latency_ms": round(totals[f"{prefix}_latency_ms_sum"] / delivered, 3) if delivered else None,
        "p50_latency_ms": rollups.percentile(latencies, rollups.LATENCY_BOUNDS_MS, 0.5),
        "p95_latency_ms": rollups.percentile(latencies, rollups.LATENCY_BOUNDS_MS, 0.95),
    }


@functools.cache
def _rollup_totals_sql() -> str:
    """A webhook's rollup rows summed in three groups: before the window (2), in the window
    but before the last 24 h (1), the last 24 h (0). Raw SQL, built once."""
    quote = connection.ops.quote_name
    sums = ", ".join(f"SUM({quote(column)})" for column in rollups.COLUMNS)
    group = "CASE WHEN hour >= %(day)s THEN 0 WHEN hour >= %(window)s THEN 1 ELSE 2 END"
    return f"SELECT {group}, {sums} FROM {quote(rollups.TABLE)} WHERE webhook_id = %(webhook)s GROUP BY 1"  # noqa: S608


def _rollup_totals(webhook: Webhook, *, window_start: datetime, day_start: datetime) -> dict:
    """Every rollup column summed over all time (`all_*`), the window (`window_*`) and the
    last 24 h (`last_24h_*`); the window is never shorter than 24 h."""
    hour = WebhookHourlyStats._meta.get_field("hour")
    webhook_field = WebhookHourlyStats._meta.get_field("webhook")
    params = {
        "webhook": webhook_field.get_db_prep_value(webhook.pk, connection),
        "window": hour.get_db_prep_value(window_start, connection),
        "day": hour.get_db_prep_value(day_start, connection),
    }
    with prepared_cursor() as cursor:
        cursor.execute(_rollup_totals_sql(), params)
        groups = {row[0]: [value or 0 for value in row[1:]] for row in cursor.fetchall()}
    zero = [0] * len(rollups.COLUMNS)
    day = groups.get(0, zero)
    window = [a + b for a, b in zip(day, groups.get(1, zero), strict=True)]
    every = [a + b for a, b in zip(window, groups.get(2, zero), strict=True)]
    totals = {}
    for prefix, values in (("all", every), ("window", window), ("last_24h", day)):
        totals.update({f"{prefix}_{column}": value for column, value in zip(rollups.COLUMNS, values, strict=True)})
    return totals


@functools.cache
def _unfinished_counts_sql() -> str:
    quote = connection.ops.quote_name
    table, webhook, state, created = (
        quote(name)
        for name in (Delivery._meta.db_table, Delivery._meta.get_field("webhook").column, "state", "created_at")
    )
    # The states are literals: a generic plan can only use the partial index
    # `delivery_webhook_unfinished` when the predicate proves its condition. The order is its
    # last column: without it PostgreSQL may read a day's pending deliveries by
    # `delivery_due` and filter them by webhook (every other webhook's backlog read to count
    # none; tests/webhooks/test_stats_counts_plan.py); with it, only this webhook's index
    # entries are read, in order, up to the cap.
    count = (
        f"(SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {webhook} = %(webhook)s"  # noqa: S608
        f" AND {state} = '{{}}' ORDER BY {created} LIMIT %(cap)s) s)"
    )
    states = (Delivery.State.PENDING.value, Delivery.State.FAILED.value)
    return "SELECT " + ", ".join(count.format(value) for value in states)


def _unfinished_counts(webhook: Webhook) -> dict[str, int]:
    """The webhook's pending and failed deliveries, each counted to `STATS_COUNT_CAP` by
    `delivery_webhook_state` (partial, index-only), so that a long history of failures does
    not make every stats request slower. One statement, prepared once per connection
    (common/db.py): planned against every daily partition of webhook_deliveries, the two
    counts cost about 2 ms each to plan with 9 partitions, against 0.3 ms to run."""
    params = {
        "webhook": Delivery._meta.get_field("webhook").get_db_prep_value(webhook.pk, connection),
        "cap": STATS_COUNT_CAP,
    }
    with prepared_cursor() as cursor:
        cursor.execute(_unfinished_counts_sql(), params)
        pending, failed = cursor.fetchone()
    return {"pending": pending, "failed": failed}


def webhook_stats(*, webhook: Webhook, window: str = "24h") -> dict:
    """From the hourly rollups (webhooks/rollups.py), never the logs: one aggregate over the
    webhook's rollup rows (one per hour it had attempts, read by `webhook_hourly_stats_unique`),
    so the cost does not grow with the logs. A window of N hours is the current hour and the
    N - 1 before it. All-time attempt counts are the webhook row's counters; all-time
    durations come from every rollup row (kept when logs are pruned)."""
    current = rollups.hour_of(timezone.now())
    window_start = current - timedelta(hours=STATS_WINDOWS[window] - 1)
    totals = _rollup_totals(webhook, window_start=window_start, day_start=current - timedelta(hours=23))
    all_time = _rollup_stats(totals, "all")
    successes, failures = webhook.success_count, webhook.failure_count
    attempts = successes + failures
    all_time.update(
        attempts=attempts,
        successes=successes,
        failures=failures,
        success_rate=round(successes / attempts, 4) if attempts else None,
    )
    deliveries = _unfinished_counts(webhook)
    return {
        **all_time,
        "window": window,
        "window_stats": _rollup_stats(totals, "window"),
        "last_24h": _rollup_stats(totals, "last_24h"),
        "pending_deliveries": deliveries["pending"],
        "failed_deliveries": deliveries["failed"],
        "consecutive_failures": webhook.consecutive_failures,
        "last_success_at": webhook.last_success_at,
        "last_failure_at": webhook.last_failure_at,
    }


def webhook_hourly(*, webhook: Webhook, hours: int = 24) -> list[dict]:
    """Successes and failures per hour over the last `hours`, oldest first, zeros included.

    Read from the hourly rollups (one row per webhook-hour, by `webhook_hourly_stats_unique`),
    which the engine writes with its logs: the cost is `hours` rows whatever the log volume."""
    now = timezone.now()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    rows = (
        WebhookHourlyStats.objects.filter(webhook=webhook, hour__gte=start)
        .values("hour")
        .annotate(successes=Sum("succeeded"), failures=Sum("failed"))
    )
    by_hour = {row["hour"]: row for row in rows}
    series = []
    for index in range(hours):
        hour = start + timedelta(hours=index)
        row = by_hour.get(hour, {})
        series.append({"hour": hour, "successes": row.get("successes", 0), "failures": row.get("failures", 0)})
    return series
