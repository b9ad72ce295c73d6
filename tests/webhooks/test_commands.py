from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from webhooks import tasks
from webhooks.models import Delivery, Event, WebhookLog
from webhooks.services import trigger_event

pytestmark = pytest.mark.django_db


def test_trigger_event_command(organization, webhook, receiver):
    out = StringIO()
    call_command("trigger_event", "acme", "application.created", "--payload", '{"id": 5}', stdout=out)
    assert "1 delivery" in out.getvalue()
    assert Event.objects.get().payload == {"id": 5}
    tasks.deliver_due()
    assert receiver.wait_for(1)[0].json()["data"] == {"id": 5}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "application.created"], "No organization"),
        (["acme", "no.such"], "Unknown event type"),
        (["acme", "application.created", "--payload", "{bad"], "not valid JSON"),
        (["acme", "application.created", "--payload", "[1]"], "JSON object"),
    ],
)
def test_trigger_event_command_errors(organization, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("trigger_event", *args, stdout=StringIO())
    assert not Event.objects.exists()


def _history(organization, receiver):
    for n in range(4):
        trigger_event(organization=organization, event="application.created", payload={"n": n})
    tasks.deliver_due()
    old = timezone.now() - timedelta(days=40)
    old_ids = list(Delivery.objects.order_by("created_at").values_list("pk", flat=True)[:3])
    WebhookLog.objects.filter(delivery_id__in=old_ids).update(created_at=old)
    Delivery.objects.filter(pk__in=old_ids).update(finished_at=old)
    Event.objects.filter(deliveries__in=old_ids).update(created_at=old)


def test_prune_dry_run_changes_nothing(organization, webhook, receiver):
    _history(organization, receiver)
    out = StringIO()
    call_command("prune_webhook_logs", "--dry-run", stdout=out)
    # The three events whose every delivery would go count too: a run leaves them orphaned, so prunes them.
    assert out.getvalue() == (
        "Would delete 3 logs, 3 finished deliveries and 3 events left without deliveries, older than 30 days.\n"
    )
    assert WebhookLog.objects.count() == 4 and Delivery.objects.count() == 4 and Event.objects.count() == 4
    out = StringIO()
    call_command("prune_webhook_logs", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        "Deleted 3 logs, 3 finished deliveries and 3 events left without deliveries, older than 30 days."
    )
    assert Event.objects.count() == 1


def test_prune_reports_and_prunes_orphaned_events(organization, webhook, receiver):
    """Events left without deliveries (their webhook deleted, or no subscriber): pruned once
    older than the retention; the newer ones are reported as kept."""
    for n in range(3):
        trigger_event(organization=organization, event="application.created", payload={"n": n})
    trigger_event(organization=organization, event="job.closed", payload={})  # no subscriber
    webhook.delete()  # its deliveries go with it
    assert not Delivery.objects.exists()
    old = list(Event.objects.order_by("created_at").values_list("pk", flat=True)[:2])
    Event.objects.filter(pk__in=old).update(created_at=timezone.now() - timedelta(days=40))

    out = StringIO()
    call_command("prune_webhook_logs", "--dry-run", stdout=out)
    assert out.getvalue().splitlines() == [
        "Would delete 0 logs, 0 finished deliveries and 2 events left without deliveries, older than 30 days.",
        "2 events without deliveries would be kept: newer than 30 days, pruned once older.",
    ]
    assert Event.objects.count() == 4
    out = StringIO()
    call_command("prune_webhook_logs", stdout=out)
    assert "  events: 2 deleted so far" in out.getvalue()
    assert "Deleted 0 logs, 0 finished deliveries and 2 events left without deliveries" in out.getvalue()
    assert "2 events without deliveries are kept" in out.getvalue()
    assert set(Event.objects.values_list("pk", flat=True)).isdisjoint(old) and Event.objects.count() == 2
    out = StringIO()
    call_command("prune_webhook_logs", "--older-than-days", "1", "--batch-size", "1", stdout=out)
    assert "Deleted 0 logs, 0 finished deliveries and 0 events left without deliveries, older than 1 day." in (
        out.getvalue()
    )


def test_trigger_event_command_speaks_in_plurals_and_names_a_repeat(organization, webhook, receiver):
    out = StringIO()
    call_command("trigger_event", "acme", "job.closed", "--idempotency-key", "k1", stdout=out)
    assert out.getvalue().endswith(": 0 deliveries.\n")
    out = StringIO()
    call_command("trigger_event", "acme", "job.closed", "--idempotency-key", "k1", stdout=out)
    assert "with this idempotency key (0 deliveries); nothing new sent." in out.getvalue()


def test_prune_deletes_old_in_batches_and_keeps_newer(organization, webhook, receiver):
    _history(organization, receiver)
    newest = WebhookLog.objects.order_by("-created_at").first()
    out = StringIO()
    call_command("prune_webhook_logs", "--older-than-days", "30", "--batch-size", "2", stdout=out)
    assert "logs: 2 deleted so far" in out.getvalue() and "logs: 3 deleted so far" in out.getvalue()
    assert list(WebhookLog.objects.all()) == [newest]
    assert Delivery.objects.count() == 1 and Event.objects.count() == 1


def test_prune_keeps_pending_deliveries(organization, webhook, receiver):
    trigger_event(organization=organization, event="application.created", payload={})
    Event.objects.update(created_at=timezone.now() - timedelta(days=90))
    call_command("prune_webhook_logs", "--older-than-days", "1", stdout=StringIO())
    assert Delivery.objects.count() == 1 and Event.objects.count() == 1


@pytest.mark.parametrize("args", [["--older-than-days", "-1"], ["--batch-size", "0"], ["--older-than-days", "x"]])
def test_prune_rejects_bad_arguments(args):
    with pytest.raises((CommandError, SystemExit)):
        call_command("prune_webhook_logs", *args, stdout=StringIO(), stderr=StringIO())


def test_sweep_prune_and_compaction_are_scheduled():
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=StringIO())
    schedules = dict(Schedule.objects.values_list("name", "func"))
    assert schedules["webhooks.sweep"] == "webhooks.tasks.sweep"
    assert schedules["webhooks.prune_logs"] == "webhooks.tasks.prune_logs"
    assert schedules["webhooks.compact_partitions"] == "webhooks.tasks.compact_partitions"
    assert Schedule.objects.get(name="webhooks.sweep").minutes == 1
