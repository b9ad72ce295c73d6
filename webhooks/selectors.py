"""Reads, scoped to an organization."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from organizations.models import Organization

from .models import Delivery, EventType, Webhook, WebhookLog


def webhook_list(*, organization: Organization) -> QuerySet[Webhook]:
    # The mTLS key is never needed to list or show a webhook: not decrypted for reads.
    return Webhook.objects.filter(organization=organization).defer("client_certificate")


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
    # With the event: log views mask the payload values its schema marks sensitive.
    logs = WebhookLog.objects.filter(webhook=webhook, organization_id=webhook.organization_id).select_related(
        "delivery__event__organization"
    )
    if success is not None:
        logs = logs.filter(success=success)
    if event:
        logs = logs.filter(event_type=event)
    if since:
        logs = logs.filter(created_at__gte=since)
    if until:
        logs = logs.filter(created_at__lte=until)
    return logs.order_by("-created_at", "-attempt")


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _p95(logs: QuerySet[WebhookLog], count: int) -> float | None:
    """The 95th percentile duration, computed in the database (nearest rank elsewhere)."""
    if not count:
        return None
    if connection.vendor == "postgresql":
        value = logs.aggregate(p95=PercentileCont("duration_ms", fraction=0.95))["p95"]
        return round(value, 3) if value is not None else None
    rank = max(math.ceil(0.95 * count), 1)
    values = list(logs.order_by("duration_ms").values_list("duration_ms", flat=True)[rank - 1 : rank])
    return values[0] if values else None  # pruned meanwhile


def _window_stats(logs: QuerySet[WebhookLog]) -> dict:
    totals = logs.aggregate(
        attempts=Count("id"), successes=Count("id", filter=Q(success=True)), mean=Avg("duration_ms")
    )
    attempts = totals["attempts"]
    return {
        "attempts": attempts,
        "successes": totals["successes"],
        "failures": attempts - totals["successes"],
        "success_rate": round(totals["successes"] / attempts, 4) if attempts else None,
        "mean_duration_ms": round(totals["mean"], 3) if totals["mean"] is not None else None,
        "p95_duration_ms": _p95(logs, attempts),
    }


def webhook_stats(*, webhook: Webhook) -> dict:
    now = timezone.now()
    # With the event: log views mask the payload values its schema marks sensitive.
    logs = WebhookLog.objects.filter(webhook=webhook, organization_id=webhook.organization_id).select_related(
        "delivery__event__organization"
    )
    all_time = _window_stats(logs)
    last_24h = _window_stats(logs.filter(created_at__gte=now - timedelta(hours=24)))
    deliveries = Delivery.objects.filter(webhook=webhook).aggregate(
        pending=Count("id", filter=Q(state=Delivery.State.PENDING)),
        failed=Count("id", filter=Q(state=Delivery.State.FAILED)),
    )
    return {
        **all_time,
        "last_24h": last_24h,
        "pending_deliveries": deliveries["pending"],
        "failed_deliveries": deliveries["failed"],
        "consecutive_failures": webhook.consecutive_failures,
        "last_success_at": webhook.last_success_at,
        "last_failure_at": webhook.last_failure_at,
    }


def webhook_hourly(*, webhook: Webhook, hours: int = 24) -> list[dict]:
    """Successes and failures per hour over the last `hours`, oldest first, zeros included."""
    now = timezone.now()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    rows = (
        WebhookLog.objects.filter(webhook=webhook, created_at__gte=start)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(successes=Count("id", filter=Q(success=True)), failures=Count("id", filter=Q(success=False)))
    )
    by_hour = {row["hour"]: row for row in rows}
    series = []
    for index in range(hours):
        hour = start + timedelta(hours=index)
        row = by_hour.get(hour, {})
        series.append({"hour": hour, "successes": row.get("successes", 0), "failures": row.get("failures", 0)})
    return series
