"""The state gauges, read from the database at scrape time (so they are right whatever
process serves the scrape): five cheap queries per scrape, each guarded on its own.

- ``webhook_due_backlog``: pending deliveries due now and not leased;
- ``webhook_lag_seconds``: now minus the oldest due delivery's ``next_attempt_at`` (0 when none);
- ``webhook_deliveries_in_flight``: deliveries leased right now (lease not expired);
- ``webhook_disabled``: webhooks disabled (``is_active`` false with ``disabled_at`` set);
- ``integration_open_issues{kind}``: open connection issues, every kind (0 included);
- ``schedule_next_run_timestamp_seconds{schedule}``: each django-q2 schedule's next run;
- ``schedule_last_success_timestamp_seconds{schedule}``: its task's last success
  (observability/schedules.py), for schedules that have succeeded at least once.

A gauge whose query fails is left out of that scrape and counts in
``metrics_scrape_errors_total{collector}``; the scrape still answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from django.db.models import Count, Min, Q
from django.db.models.functions import Now
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.metrics import record_scrape_error

logger = logging.getLogger(__name__)


def _deliveries() -> Iterator[GaugeMetricFamily]:
    from webhooks.models import Delivery

    not_leased = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())
    due = not_leased & Q(next_attempt_at__lte=Now())
    # One query over pending rows: due count, oldest due, leased count.
    row = Delivery.objects.filter(state=Delivery.State.PENDING).aggregate(
        due=Count("pk", filter=due),
        oldest=Min("next_attempt_at", filter=due),
        leased=Count("pk", filter=Q(lease_expires_at__gt=Now())),
    )
    lag = (timezone.now() - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    yield GaugeMetricFamily("webhook_due_backlog", "Pending deliveries due now and not leased.", value=row["due"])
    yield GaugeMetricFamily(
        "webhook_lag_seconds", "Age of the oldest due delivery (0 when none is due).", value=max(lag, 0.0)
    )
    yield GaugeMetricFamily("webhook_deliveries_in_flight", "Deliveries leased right now.", value=row["leased"])


def _webhooks() -> Iterator[GaugeMetricFamily]:
    from webhooks.models import Webhook

    count = Webhook.objects.filter(is_active=False, disabled_at__isnull=False).count()
    yield GaugeMetricFamily("webhook_disabled", "Webhooks disabled (by the engine or an operator).", value=count)


def _issues() -> Iterator[GaugeMetricFamily]:
    from integrations.models import ConnectionIssue

    counts = dict(
        ConnectionIssue.objects.filter(status=ConnectionIssue.Status.OPEN)
        .values_list("kind")
        .annotate(n=Count("pk"))
        .order_by()
    )
    family = GaugeMetricFamily("integration_open_issues", "Open connection issues, by kind.", labels=["kind"])
    for kind in ConnectionIssue.Kind.values:
        family.add_metric([kind], counts.get(kind, 0))
    yield family


def _schedules() -> Iterator[GaugeMetricFamily]:
    from django_q.models import Schedule

    family = GaugeMetricFamily(
        "schedule_next_run_timestamp_seconds", "When each django-q2 schedule runs next.", labels=["schedule"]
    )
    for name, next_run in Schedule.objects.exclude(name=None).values_list("name", "next_run").order_by("name"):
        if next_run is not None:
            family.add_metric([name], next_run.timestamp())
    yield family


def _schedule_runs() -> Iterator[GaugeMetricFamily]:
    from .models import ScheduleRun

    family = GaugeMetricFamily(
        "schedule_last_success_timestamp_seconds",
        "When each schedule's task last completed successfully.",
        labels=["schedule"],
    )
    for name, at in ScheduleRun.objects.values_list("name", "last_success_at").order_by("name"):
        family.add_metric([name], at.timestamp())
    yield family


#: collector label -> the function yielding its gauges (one query each)
GAUGES: dict[str, Callable[[], Iterator[GaugeMetricFamily]]] = {
    "deliveries": _deliveries,
    "webhooks": _webhooks,
    "issues": _issues,
    "schedules": _schedules,
    "schedule_runs": _schedule_runs,
}


class DatabaseCollector(Collector):
    """Yields the state gauges; registered per scrape (observability/views.py)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, gauges in GAUGES.items():
            try:
                families = list(gauges())
            except Exception:
                logger.warning("Metrics: the %s gauges could not be read.", name, exc_info=True)
                record_scrape_error(collector=name)
                continue
            yield from families
