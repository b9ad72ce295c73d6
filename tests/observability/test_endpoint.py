"""`/metrics`: Prometheus text, the state gauges read from the database at scrape time (in
a constant number of queries), `METRICS_TOKEN`, and a gauge that fails to read."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone
from django_q.models import Schedule

from integrations.models import ConnectionIssue
from observability import collector
from observability.models import ScheduleRun
from observability.schedules import note_schedule_success
from tests.integrations.factories import IntegrationFactory
from webhooks.models import Delivery, Webhook
from webhooks.services import trigger_event, webhook_create

from .helpers import parse, scrape

pytestmark = pytest.mark.django_db

#: one per gauge group in observability/collector.py
SCRAPE_QUERIES = 5


def test_the_state_gauges_show_backlog_lag_in_flight_and_disabled(organization, client, django_assert_num_queries):
    webhook = webhook_create(organization=organization, name="r", url="http://127.0.0.1:9/", events=["*"])
    for seq in range(6):
        trigger_event(organization=organization, event="application.created", payload={"seq": seq})
    deliveries = list(Delivery.objects.order_by("created_at"))
    now = timezone.now()
    # 0: oldest due (2 min), 1-2: due, 3: leased (in flight), 4: not due yet, 5: succeeded
    Delivery.objects.filter(pk=deliveries[0].pk).update(next_attempt_at=now - timedelta(seconds=120))
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries[1:3]]).update(next_attempt_at=now - timedelta(seconds=5))
    Delivery.objects.filter(pk=deliveries[3].pk).update(
        lease_token=deliveries[3].pk, lease_expires_at=now + timedelta(minutes=1)
    )
    Delivery.objects.filter(pk=deliveries[4].pk).update(next_attempt_at=now + timedelta(minutes=5))
    Delivery.objects.filter(pk=deliveries[5].pk).update(state=Delivery.State.SUCCEEDED, next_attempt_at=None)
    for name in ("off1", "off2"):
        webhook_create(organization=organization, name=name, url="http://127.0.0.1:9/", events=["*"])
    Webhook.objects.filter(name__startswith="off").update(is_active=False, disabled_at=now)
    Webhook.objects.filter(pk=webhook.pk).update(is_active=False)  # paused, not disabled

    with django_assert_num_queries(SCRAPE_QUERIES):
        samples = scrape(client)
    assert samples.value("webhook_due_backlog") == 3
    assert 120 <= samples.value("webhook_lag_seconds") < 130
    assert samples.value("webhook_deliveries_in_flight") == 1
    assert samples.value("webhook_disabled") == 2


def test_no_due_delivery_is_zero_lag(client):
    samples = scrape(client)
    assert samples.value("webhook_due_backlog") == 0
    assert ("webhook_lag_seconds", frozenset()) in samples and samples.value("webhook_lag_seconds") == 0


def test_open_issues_by_kind_every_kind_listed(organization, client):
    now = timezone.now()
    for kind, status in [
        ("rate_limited", "open"),
        ("provider_unavailable", "open"),
        ("credentials_rejected", "pending"),  # not open yet
        ("missing_scopes", "resolved"),
    ]:
        ConnectionIssue.objects.create(
            organization=organization,
            integration=IntegrationFactory(organization=organization),
            kind=kind,
            status=status,
            first_seen_at=now,
            last_seen_at=now,
        )
    ConnectionIssue.objects.create(
        organization=organization,
        integration=IntegrationFactory(organization=organization),
        kind="rate_limited",
        status="open",
        first_seen_at=now,
        last_seen_at=now,
    )
    samples = scrape(client)
    assert samples.value("integration_open_issues", kind="rate_limited") == 2
    assert samples.value("integration_open_issues", kind="provider_unavailable") == 1
    assert ("integration_open_issues", frozenset({("kind", "credentials_rejected")})) in samples
    assert samples.value("integration_open_issues", kind="credentials_rejected") == 0
    assert samples.total("integration_open_issues") == 3
    assert {dict(labels)["kind"] for name, labels in samples if name == "integration_open_issues"} == set(
        ConnectionIssue.Kind.values
    )


def test_schedules_next_run_and_last_success(client):
    call_command("setup_schedules", verbosity=0)
    sweep = Schedule.objects.get(name="webhooks.sweep")
    stopped = timezone.now() - timedelta(seconds=42)
    note_schedule_success(task={"success": True, "group": "webhooks.sweep", "stopped": stopped})
    note_schedule_success(task={"success": False, "group": "health.heartbeat", "stopped": stopped})  # failed
    note_schedule_success(task={"success": True, "group": None})  # a delivery task
    note_schedule_success(task={"success": True, "group": "not-a-schedule"})
    assert list(ScheduleRun.objects.values_list("name", flat=True)) == ["webhooks.sweep"]
    samples = scrape(client)
    assert samples.value("schedule_next_run_timestamp_seconds", schedule="webhooks.sweep") == pytest.approx(
        sweep.next_run.timestamp()
    )
    names = {dict(labels)["schedule"] for name, labels in samples if name == "schedule_next_run_timestamp_seconds"}
    assert {"webhooks.sweep", "health.run_checks", "health.heartbeat"} <= names
    assert samples.value("schedule_last_success_timestamp_seconds", schedule="webhooks.sweep") == pytest.approx(
        stopped.timestamp()
    )
    assert ("schedule_last_success_timestamp_seconds", frozenset({("schedule", "health.heartbeat")})) not in samples

    later = timezone.now()
    note_schedule_success(task={"success": True, "group": "webhooks.sweep", "stopped": later})
    assert scrape(client).value("schedule_last_success_timestamp_seconds", schedule="webhooks.sweep") == pytest.approx(
        later.timestamp()
    )


def test_a_gauge_that_fails_to_read_is_left_out_and_counted(client, monkeypatch):
    def broken():
        raise DatabaseError("relation does not exist")
        yield  # pragma: no cover

    monkeypatch.setitem(collector.GAUGES, "webhooks", broken)
    before = scrape(client).value("metrics_scrape_errors_total", collector="webhooks")
    samples = scrape(client)
    assert samples.value("metrics_scrape_errors_total", collector="webhooks") == before + 1
    assert ("webhook_disabled", frozenset()) not in samples
    assert ("webhook_due_backlog", frozenset()) in samples  # the other gauges still answer


def test_open_without_a_token(client, settings):
    settings.METRICS_TOKEN = None
    assert client.get("/metrics").status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer s3cret-metrics-toke", "Basic czNjcmV0", "s3cret-metrics-token", "Bearer "],
)
def test_the_token_is_required_when_set(client, settings, authorization):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["type"] and "Authorization: Bearer" in body["detail"]
    assert "s3cret-metrics-token" not in response.content.decode()
    assert b"webhook_deliveries_total" not in response.content


def test_the_right_token_is_answered(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    samples = scrape(client, HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert ("webhook_due_backlog", frozenset()) in samples


def test_only_get(client):
    assert client.post("/metrics").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_the_text_is_prometheus_format_with_help_and_type(client):
    text = client.get("/metrics").content.decode()
    assert "# TYPE webhook_due_backlog gauge" in text
    assert "# HELP webhook_lag_seconds " in text
    parse(text)  # parses


def test_the_workers_signal_notes_a_schedules_success():
    from django_q.signals import post_execute_in_worker

    stopped = timezone.now()
    post_execute_in_worker.send(
        sender="django_q", func=None, task={"success": True, "group": "health.heartbeat", "stopped": stopped}
    )
    assert ScheduleRun.objects.get(name="health.heartbeat").last_success_at == stopped
