"""Reads of the health app, scoped by the caller (the integration is already scoped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from integrations.models import Integration

from .models import HealthCheck, HealthState

UPTIME_WINDOW = timedelta(hours=24)


def health_check_list(*, integration: Integration) -> QuerySet[HealthCheck]:
    return HealthCheck.objects.filter(integration=integration).order_by("-checked_at", "-id")


@dataclass(frozen=True)
class HealthSummary:
    integration: Integration
    consecutive_unhealthy: int
    recent: list[HealthCheck]
    checks_24h: int
    up_24h: int
    average_response_time_ms_24h: float | None
    since: datetime

    @property
    def latest(self) -> HealthCheck | None:
        return self.recent[0] if self.recent else None

    @property
    def uptime_24h(self) -> float | None:
        """Percentage of the last 24 h's checks that were not unhealthy; None without checks."""
        return round(100.0 * self.up_24h / self.checks_24h, 2) if self.checks_24h else None


def health_summary(*, integration: Integration, limit: int = 20) -> HealthSummary:
    """Latest status, the `limit` most recent checks and uptime over 24 h: three queries."""
    since = timezone.now() - UPTIME_WINDOW
    recent = list(health_check_list(integration=integration)[:limit])
    window = HealthCheck.objects.filter(integration=integration, checked_at__gte=since).aggregate(
        total=Count("id"),
        up=Count("id", filter=~Q(status=HealthCheck.Status.UNHEALTHY)),
        avg=Avg("response_time_ms"),
    )
    state = HealthState.objects.filter(pk=integration.pk).values_list("consecutive_unhealthy", flat=True).first()
    return HealthSummary(
        integration=integration,
        consecutive_unhealthy=state or 0,
        recent=recent,
        checks_24h=window["total"],
        up_24h=window["up"],
        average_response_time_ms_24h=round(window["avg"], 1) if window["avg"] is not None else None,
        since=since,
    )
