"""Reads of the portal's list pages, each a constant number of queries whatever the number
of rows (no query per integration)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from health.models import HealthCheck, HealthState
from health.selectors import UPTIME_WINDOW, HealthSummary
from integrations.models import Integration
from integrations.selectors import connection_issue_list, integration_list
from integrations.usage import usage_by_status_class
from organizations.models import Organization
from webhooks.events import event_definitions
from webhooks.models import EventType
from webhooks.schemas import GENERIC_SCHEMA

USAGE_WINDOW = timedelta(hours=24)


def health_summaries(*, integrations: list[Integration], limit: int = 12) -> dict[Any, HealthSummary]:
    """`health.selectors.health_summary` for many integrations in three queries."""
    ids = [i.pk for i in integrations]
    since = timezone.now() - UPTIME_WINDOW
    recent: dict[Any, list[HealthCheck]] = defaultdict(list)
    checks = (
        HealthCheck.objects.filter(integration_id__in=ids)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("integration_id")], order_by=[F("checked_at").desc(), F("id").desc()]
            )
        )
        .filter(rank__lte=limit)
        .order_by("integration_id", "-checked_at", "-id")
    )
    for check in checks:
        recent[check.integration_id].append(check)
    windows = {
        row["integration_id"]: row
        for row in HealthCheck.objects.filter(integration_id__in=ids, checked_at__gte=since)
        .values("integration_id")
        .annotate(
            total=Count("id"),
            up=Count("id", filter=~Q(status=HealthCheck.Status.UNHEALTHY)),
            avg=Avg("response_time_ms"),
        )
        .order_by()
    }
    states = dict(HealthState.objects.filter(pk__in=ids).values_list("pk", "consecutive_unhealthy"))
    summaries = {}
    for integration in integrations:
        window = windows.get(integration.pk, {"total": 0, "up": 0, "avg": None})
        summaries[integration.pk] = HealthSummary(
            integration=integration,
            consecutive_unhealthy=states.get(integration.pk) or 0,
            recent=recent.get(integration.pk, []),
            checks_24h=window["total"],
            up_24h=window["up"],
            average_response_time_ms_24h=round(window["avg"], 1) if window["avg"] is not None else None,
            since=since,
        )
    return summaries


def integration_rows(*, organization: Organization) -> list[dict[str, Any]]:
    """The integrations page: each integration with its health, open issues and calls of the
    last 24 h by status class. Six queries, whatever the number of integrations."""
    integrations = list(integration_list(organization=organization))
    health = health_summaries(integrations=integrations)
    issues: dict[Any, list] = defaultdict(list)
    for issue in connection_issue_list(organization=organization).filter(
        integration_id__in=[i.pk for i in integrations]
    ):
        issues[issue.integration_id].append(issue)
    until = timezone.now()
    usage = usage_by_status_class(integrations=integrations, since=until - USAGE_WINDOW, until=until)
    return [
        {
            "integration": integration,
            "health": health[integration.pk],
            "issues": issues.get(integration.pk, []),
            "usage": usage[integration.pk],
            "calls_24h": sum(usage[integration.pk].values()),
        }
        for integration in integrations
    ]


def event_entries(*, organization: Organization) -> list[dict[str, Any]]:
    """The catalogue's events then the organization's custom types, each with its schema and
    example as indented JSON: one query (the custom types)."""
    entries = [
        {
            "name": d.name,
            "description": d.description,
            "version": d.version,
            "deprecated": d.deprecated,
            "custom": False,
            "schema": json.dumps(d.schema or GENERIC_SCHEMA, indent=2),
            "example": json.dumps(d.example, indent=2) if d.example else "",
        }
        for d in sorted(event_definitions().values(), key=lambda d: d.name)
    ]
    entries += [
        {
            "name": t.name,
            "description": t.description,
            "version": t.version,
            "deprecated": t.deprecated,
            "custom": True,
            "schema": json.dumps(t.schema, indent=2),
            "example": json.dumps(t.example, indent=2) if t.example else "",
        }
        for t in EventType.objects.filter(organization=organization).order_by("name")
    ]
    return entries
