"""The call log (integrations/calllog.py): records land in batches, off the caller's path;
a failed write is logged and dropped; pruning (command, schedule, task)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from integrations import calllog, tasks
from integrations.client import hooks
from integrations.models import ProviderCall
from tests.cluster import wait_until

from .factories import IntegrationFactory


def call(integration, path="/v1/users/42", status=200, **fields) -> hooks.CallRecord:
    values = {"method": "GET", "duration_ms": 12.5, "bytes": 300, "waited_ms": 0.0, "error_kind": "", **fields}
    return hooks.CallRecord(
        integration_id=integration.pk,
        organization_id=integration.organization_id,
        path=path,
        status=status,
        **values,
    )


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("get", "/calendar/v3/calendars/primary/events?pageToken=x", "GET /calendar/v3/calendars/primary/events"),
        ("GET", "/v1/workers/12345", "GET /v1/workers/{id}"),
        ("PATCH", "/v1/x/3f2b9c1e-8a4d-4b6e-9f0a-1c2d3e4f5a6b/y", "PATCH /v1/x/{id}/y"),
        ("GET", "/calendars/team@group.calendar.google.com/events", "GET /calendars/{id}/events"),
        ("GET", "/me/messages/AAMkAGI2TG93AAA1234567=", "GET /me/messages/{id}"),
        ("GET", "/v2.1/accounts/0123456789abcdef01/envelopes", "GET /v2.1/accounts/{id}/envelopes"),
        ("POST", "/api/chat.postMessage", "POST /api/chat.postMessage"),
        ("GET", "/v1.0/me", "GET /v1.0/me"),
    ],
)
def test_endpoint_template_collapses_ids(method, path, endpoint):
    assert calllog.endpoint_template(method, path) == endpoint


@pytest.mark.django_db
def test_after_call_hook_buffers_and_flush_writes_in_one_batch(django_assert_max_num_queries):
    integration = IntegrationFactory()
    for n in range(5):
        hooks.after_call(call(integration, path=f"/v1/users/{n}", status=200 if n else 429, waited_ms=n))
    assert ProviderCall.objects.count() == 0  # nothing written on the caller's path
    assert calllog.call_log.pending() == 5
    with django_assert_max_num_queries(3):  # one INSERT (plus the savepoint around it)
        assert calllog.flush() == 5
    rows = list(ProviderCall.objects.order_by("path"))
    assert [row.path for row in rows] == [f"/v1/users/{n}" for n in range(5)]
    first = rows[0]
    assert (first.integration_id, first.organization_id) == (integration.pk, integration.organization_id)
    assert (first.method, first.endpoint, first.status) == ("GET", "GET /v1/users/{id}", 429)
    assert (first.duration_ms, first.bytes, first.waited_ms) == (12.5, 300, 0.0)
    assert all(row.created_at is not None for row in rows)


@pytest.mark.django_db
def test_long_paths_are_cut_to_500_characters():
    integration = IntegrationFactory()
    hooks.after_call(call(integration, path="/v1/" + "a" * 900))
    calllog.flush()
    assert len(ProviderCall.objects.get().path) == 500


@pytest.mark.django_db
def test_disabled_call_log_records_nothing(settings):
    settings.INTEGRATIONS_CALL_LOG_ENABLED = False
    hooks.after_call(call(IntegrationFactory()))
    assert calllog.call_log.pending() == 0


@pytest.mark.django_db
def test_a_full_buffer_drops_newer_records_and_says_so(settings, caplog):
    settings.INTEGRATIONS_CALL_LOG_MAX_BUFFER = 3
    integration = IntegrationFactory()
    for _ in range(5):
        hooks.after_call(call(integration))
    with caplog.at_level(logging.WARNING, logger="integrations.calllog"):
        assert calllog.flush() == 3
    assert "2 provider call record(s) dropped" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_failed_flush_logs_and_drops_and_the_caller_is_unaffected(caplog):
    integration = IntegrationFactory()
    orphan = hooks.CallRecord(
        integration_id=uuid.uuid4(),  # no such integration: the INSERT fails
        organization_id=integration.organization_id,
        method="GET",
        path="/v1/x",
        status=200,
        duration_ms=1,
        bytes=0,
        waited_ms=0,
    )
    hooks.after_call(orphan)
    with caplog.at_level(logging.ERROR, logger="integrations.calllog"):
        assert calllog.flush() == 0
    assert "Could not write 1 provider call record(s)" in caplog.text
    assert calllog.call_log.pending() == 0
    hooks.after_call(call(integration))  # the log keeps working
    assert calllog.flush() == 1


@pytest.mark.django_db(transaction=True)
def test_the_background_thread_writes_records_without_a_flush(settings):
    settings.INTEGRATIONS_CALL_LOG_BACKGROUND = True
    settings.INTEGRATIONS_CALL_LOG_FLUSH_SECONDS = 0.1
    integration = IntegrationFactory()
    for n in range(7):
        hooks.after_call(call(integration, path=f"/v1/items/{n}"))
    wait_until(lambda: ProviderCall.objects.filter(integration=integration).count() == 7, timeout=10)
    assert calllog.call_log.pending() == 0


@pytest.mark.django_db(transaction=True)
def test_a_full_batch_is_written_at_once(settings):
    settings.INTEGRATIONS_CALL_LOG_BACKGROUND = True
    settings.INTEGRATIONS_CALL_LOG_FLUSH_SECONDS = 3600  # only the batch size can trigger it
    settings.INTEGRATIONS_CALL_LOG_BATCH_SIZE = 4
    integration = IntegrationFactory()
    calllog.call_log._wake.set()  # a thread started earlier: let it re-read the interval
    for _ in range(4):
        hooks.after_call(call(integration))
    wait_until(lambda: ProviderCall.objects.filter(integration=integration).count() == 4, timeout=10)


# --- retention -----------------------------------------------------------------------------


def _aged(integration, days: float, count: int = 1) -> None:
    for _ in range(count):
        hooks.after_call(call(integration))
    calllog.flush()
    ProviderCall.objects.filter(created_at__gt=timezone.now() - timedelta(minutes=1)).update(
        created_at=timezone.now() - timedelta(days=days)
    )


@pytest.mark.django_db
def test_prune_dry_run_counts_and_changes_nothing():
    integration = IntegrationFactory()
    _aged(integration, 40, 3)
    out = StringIO()
    call_command("prune_provider_calls", "--dry-run", stdout=out)
    assert "Would delete 3 provider call(s) older than 30 day(s)." in out.getvalue()
    assert ProviderCall.objects.count() == 3


@pytest.mark.django_db
def test_prune_deletes_old_rows_in_batches_with_progress_and_keeps_newer(settings):
    settings.INTEGRATIONS_CALL_LOG_RETENTION_DAYS = 7
    integration = IntegrationFactory()
    _aged(integration, 10, 5)
    _aged(integration, 3, 2)
    out = StringIO()
    call_command("prune_provider_calls", "--batch-size", "2", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["  calls: 2 deleted so far", "  calls: 4 deleted so far", "  calls: 5 deleted so far"]
    assert lines[-1] == "Deleted 5 provider call(s) older than 7 day(s)."
    assert ProviderCall.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--older-than-days", "-1"], ["--batch-size", "0"], ["--older-than-days", "x"]])
def test_prune_rejects_bad_arguments(args):
    with pytest.raises((CommandError, SystemExit)):
        call_command("prune_provider_calls", *args, stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_pruning_is_scheduled_daily_and_the_task_prunes():
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="integrations.prune_provider_calls")
    assert (schedule.func, schedule.minutes) == ("integrations.tasks.prune_provider_calls", 24 * 60)
    integration = IntegrationFactory()
    _aged(integration, 31, 2)
    _aged(integration, 1, 1)
    assert tasks.prune_provider_calls() == 2
    assert ProviderCall.objects.count() == 1


@pytest.mark.django_db
def test_secret_query_parameters_never_reach_the_log():
    integration = IntegrationFactory()
    hooks.after_call(call(integration, path="/v1/x?page=2&api_key=SECRET1&access_token=SECRET2&sig=SECRET3"))
    calllog.flush()
    stored = ProviderCall.objects.get()
    assert "SECRET" not in stored.path and "SECRET" not in stored.endpoint
    assert stored.path == "/v1/x?page=2&api_key=[redacted]&access_token=[redacted]&sig=[redacted]"
