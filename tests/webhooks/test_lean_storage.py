"""Lean storage (migration 0012, bench/storage.py): what attempt logs no longer store is
rebuilt exactly, old rows read as before, and each index serves the query it is kept for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import make_key_client
from tests.migrating import latest, migrate_to
from tests.webhooks.test_scale_reads import _plan, _uses
from webhooks import selectors, tasks
from webhooks.models import Delivery, Event, WebhookLog
from webhooks.services import trigger_event, webhook_create

BASE = "/api/integrations/webhooks/"


@pytest.mark.django_db
def test_a_log_stores_only_custom_headers_and_shows_them_as_sent(api_client, organization, receiver):
    webhook = webhook_create(
        organization=organization,
        name="h",
        url=receiver.url,
        events=["*"],
        headers={"X-Tenant": "acme", "Authorization": "Bearer receiver-sentinel-token"},
    )
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    [request] = receiver.wait_for(1)
    log = WebhookLog.objects.get()
    assert log.custom_headers == {"X-Tenant": "acme", "Authorization": "[redacted]"}
    [row] = api_client.get(f"{BASE}{webhook.pk}/logs/").json()["results"]
    assert row["message_id"] == request.headers["webhook-id"] == Delivery.objects.get().message_id
    assert row["request_headers"] == {
        "X-Tenant": "acme",
        "Authorization": "[redacted]",
        "content-type": request.headers["content-type"],
        "webhook-id": request.headers["webhook-id"],
        "webhook-timestamp": request.headers["webhook-timestamp"],
        "webhook-signature": "[redacted]",  # not kept
    }


@pytest.mark.django_db(transaction=True)
def test_logs_written_before_the_migration_read_as_before(organization):
    old = migrate_to([("webhooks", "0011_scale_partitions")])
    try:
        OldWebhook, OldEvent = old.get_model("webhooks", "Webhook"), old.get_model("webhooks", "Event")
        OldDelivery, OldLog = old.get_model("webhooks", "Delivery"), old.get_model("webhooks", "WebhookLog")
        hook = OldWebhook.objects.create(organization_id=organization.pk, name="w", url="https://a.test/", secret="x")
        event = OldEvent.objects.create(organization_id=organization.pk, type="job.opened")
        delivery = OldDelivery.objects.create(
            organization_id=organization.pk, event=event, webhook=hook, state="succeeded", attempts=1
        )
        at = timezone.now() - timedelta(minutes=5)
        headers = {
            "X-Tenant": "acme",
            "content-type": "application/json",
            "webhook-id": f"msg_{delivery.pk.hex}",
            "webhook-timestamp": str(int(at.timestamp()) - 1),  # as sent, even a second off
            "webhook-signature": "v1,c2lnbmF0dXJl",
        }
        OldLog.objects.create(
            organization_id=organization.pk, webhook=hook, delivery=delivery, event_type="job.opened",
            message_id=f"msg_{delivery.pk.hex}", attempt=1, request_url=hook.url, request_headers=headers,
            response_status=200, success=True, created_at=at,
        )  # fmt: skip
    finally:
        migrate_to(latest())
    [row] = make_key_client(organization).get(f"{BASE}{hook.pk}/logs/").json()["results"]
    assert row["message_id"] == f"msg_{delivery.pk.hex}"
    assert row["request_headers"] == {**headers, "webhook-signature": "[redacted]"}


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN output is PostgreSQL's")
def test_each_index_serves_its_query(organization, receiver):
    """docs/RELIABILITY.md ("Indexes") lists these: each kept index, the query it serves."""
    hooks = [webhook_create(organization=organization, name=f"w{n}", url=receiver.url, events=["*"]) for n in range(3)]
    trigger_event(organization=organization, event="job.opened", payload={})
    start = timezone.now() - timedelta(hours=2)
    logs = []
    for hook in hooks:
        delivery = Delivery.objects.get(webhook=hook)
        logs += [
            WebhookLog(
                organization_id=organization.pk,
                webhook=hook,
                delivery=delivery,
                event_type=f"e{i % 7}",
                attempt=1,
                request_url=hook.url,
                success=i % 10 != 3,
                created_at=start + timedelta(seconds=i),
            )
            for i in range(1000)
        ]
    WebhookLog.objects.bulk_create(logs)
    # Deliveries as they age: mostly succeeded, some failed, a few pending.
    events = Event.objects.bulk_create(Event(organization=organization, type="job.opened") for _ in range(1000))
    states = ["succeeded"] * 8 + ["failed", "pending"]
    Delivery.objects.bulk_create(
        Delivery(organization=organization, event=event, webhook=hooks[i % 3], state=states[i % 10])
        for i, event in enumerate(events)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhook_logs")
        cursor.execute("ANALYZE webhook_deliveries")
    hook = hooks[0]
    # The API's log filters: webhook + created, webhook + success + created, event type.
    assert _uses("log_webhook_created", _plan(selectors.webhook_log_list(webhook=hook)[:51]))
    assert _uses("log_webhook_created", _plan(selectors.webhook_log_list(webhook=hook, success=True)[:51]))
    assert _uses("log_webhook_failed", _plan(selectors.webhook_log_list(webhook=hook, success=False)[:51]))
    assert _uses("log_webhook_event", _plan(selectors.webhook_log_list(webhook=hook, event="e3")[:51]))
    # The last failure announced when a webhook is disabled (services/operational.py).
    last_failure = WebhookLog.objects.filter(webhook_id=hook.pk, success=False).order_by("-created_at")[:1]
    assert _uses("log_webhook_failed", _plan(last_failure))
    # Pruning in batches (services/retention.py), and a delivery's logs (replay, cascades).
    assert _uses("log_created", _plan(WebhookLog.objects.filter(created_at__lt=start).values("pk")[:1000]))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'webhook_logs_delivery_id%%' AND relkind IN ('i', 'I')"
            " AND NOT relispartition"
        )
        [(by_delivery,)] = cursor.fetchall()
    assert _uses(by_delivery, _plan(WebhookLog.objects.filter(delivery=delivery)))
    # Stats' pending and failed counts (selectors.webhook_stats), ordered delivery's older pending.
    failed = Delivery.objects.filter(webhook=hook, state="failed").values("created_at")[:10_000]
    assert _uses("delivery_webhook_unfinished", _plan(failed))
    # Pending rows are also indexed by `delivery_due` (the claim): with few webhooks, the
    # planner may take either; both leave succeeded deliveries out.
    pending = _plan(Delivery.objects.filter(webhook=hook, state="pending").values("created_at")[:10_000])
    assert _uses("delivery_webhook_unfinished", pending) or _uses("delivery_due", pending)
