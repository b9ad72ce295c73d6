"""The drain loop end to end: retries, schedules and automatic disabling, against a real receiver."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook as ReferenceVerifier

from tests.webhooks.helpers import make_due
from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.models import Delivery, Webhook, WebhookLog
from webhooks.services import trigger_event

pytestmark = pytest.mark.django_db


def test_retry_keeps_webhook_id_with_new_timestamp_and_follows_schedule(organization, webhook, receiver):
    receiver.replies = [Reply(status=500, body=b"boom")]
    trigger_event(organization=organization, event="application.created", payload={})
    before = timezone.now()
    tasks.deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.PENDING and delivery.attempts == 1
    # First retry after 5 s +/- 20 %.
    assert before + timedelta(seconds=3.9) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=6.1)
    assert tasks.deliver_due() == 0  # not due yet

    time.sleep(1.1)  # a later second for the new webhook-timestamp
    make_due()
    assert tasks.deliver_due() == 1
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message_id
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.body == second.body
    ReferenceVerifier(webhook.secret).verify(second.body, second.headers)
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SUCCEEDED
    logs = list(WebhookLog.objects.order_by("attempt").values_list("attempt", "success", "response_status"))
    assert logs == [(1, False, 500), (2, True, 200)]


def test_retry_delays_grow_and_end_after_retry_attempts(organization, webhook, receiver):
    receiver.default = Reply(status=503)
    trigger_event(organization=organization, event="application.created", payload={})
    delays = []
    for _ in range(webhook.retry_attempts + 1):
        started = timezone.now()
        make_due()
        assert tasks.deliver_due() == 1
        delivery = Delivery.objects.get()
        if delivery.next_attempt_at:
            delays.append((delivery.next_attempt_at - started).total_seconds())
    assert delivery.state == Delivery.State.FAILED and delivery.attempts == 4
    assert len(receiver.requests) == 4
    assert 4 <= delays[0] <= 6.5 and 240 <= delays[1] <= 361 and 1440 <= delays[2] <= 2161
    make_due()
    assert tasks.deliver_due() == 0


def test_retry_after_is_honoured(organization, webhook, receiver):
    receiver.replies = [Reply(status=429, headers={"Retry-After": "120"})]
    trigger_event(organization=organization, event="application.created", payload={})
    now = timezone.now()
    tasks.deliver_due()
    delivery = Delivery.objects.get()
    assert now + timedelta(seconds=119) <= delivery.next_attempt_at <= now + timedelta(seconds=122)


def test_410_disables_the_webhook_at_once(organization, webhook, receiver):
    receiver.default = Reply(status=410)
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert webhook.is_active is False and "410" in webhook.disabled_reason and webhook.disabled_at
    assert Delivery.objects.get().state == Delivery.State.FAILED
    # Later events are not delivered to it.
    assert trigger_event(organization=organization, event="application.created", payload={}).delivery_count == 0


def test_consecutive_failures_disable_and_reenable_resets(organization, webhook, receiver, settings, api_client):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 3
    receiver.default = Reply(status=500)
    # A failed attempt that will be retried does not count: only deliveries that end failed.
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 0 and webhook.failure_count == 1
    Delivery.objects.all().delete()
    Webhook.objects.filter(pk=webhook.pk).update(retry_attempts=0)
    for _ in range(2):
        trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.consecutive_failures == 2
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert webhook.is_active is False
    assert webhook.disabled_reason == "Disabled after 3 consecutive failed deliveries."
    # Pending retries of a disabled webhook end as failed, unsent.
    make_due()
    sent_before = len(receiver.requests)
    tasks.deliver_due()
    assert len(receiver.requests) == sent_before
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.FAILED}

    response = api_client.patch(f"/api/integrations/webhooks/{webhook.pk}/", {"is_active": True}, format="json")
    assert response.status_code == 200
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.consecutive_failures == 0 and webhook.disabled_at is None


def test_success_resets_consecutive_failures(organization, webhook, receiver):
    Webhook.objects.filter(pk=webhook.pk).update(retry_attempts=0)
    receiver.replies = [Reply(status=500), Reply(status=500)]
    for _ in range(2):
        trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 2
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 0 and webhook.failure_count == 2 and webhook.success_count == 1
