"""The delivery engine against a real local HTTP receiver."""

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook as ReferenceVerifier

from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.engine.loop import process
from webhooks.engine.store import claim_due
from webhooks.models import Delivery, Event, Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create, webhook_rotate_secret

pytestmark = pytest.mark.django_db


def make_due(delivery_or_qs=None):
    """Pretend the retry delay has passed."""
    Delivery.objects.filter(state=Delivery.State.PENDING).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_delivery_is_signed_per_standard_webhooks(organization, webhook, receiver):
    event = trigger_event(organization=organization, event="application.created", payload={"application_id": 7})
    assert event.delivery_count == 1
    assert tasks.deliver_due() == 1

    [request] = receiver.wait_for(1)
    # The reference implementation verifies our signature and returns the body.
    verified = ReferenceVerifier(webhook.secret).verify(request.body, request.headers)
    assert verified["type"] == "application.created"
    assert verified["data"] == {"application_id": 7}
    assert verified["timestamp"].startswith(str(event.created_at.year))
    delivery = Delivery.objects.get()
    assert request.headers["webhook-id"] == delivery.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert request.headers["content-type"] == "application/json"
    assert delivery.state == Delivery.State.SUCCEEDED

    log = WebhookLog.objects.get()
    assert log.success and log.response_status == 200 and log.attempt == 1
    assert log.response_body == "ok"
    assert log.duration_ms > 0
    webhook.refresh_from_db()
    assert webhook.success_count == 1 and webhook.last_success_at is not None


def test_custom_headers_are_sent_and_sensitive_ones_not_logged(organization, receiver):
    webhook_create(
        organization=organization,
        name="h",
        url=receiver.url,
        events=["*"],
        headers={"X-Tenant": "acme", "Authorization": "Bearer receiver-sentinel-token"},
    )
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    [request] = receiver.wait_for(1)
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["authorization"] == "Bearer receiver-sentinel-token"
    log = WebhookLog.objects.get()
    assert log.request_headers["X-Tenant"] == "acme"
    assert log.request_headers["Authorization"] == "[redacted]"
    assert "receiver-sentinel-token" not in json.dumps(log.request_headers)


def test_fan_out_only_to_active_subscribed_webhooks_of_the_organization(
    organization, other_organization, receiver, webhook
):
    webhook_create(organization=organization, name="all", url=receiver.url, events=["*"])
    webhook_create(organization=organization, name="jobs", url=receiver.url, events=["job.created"])
    webhook_create(organization=organization, name="off", url=receiver.url, events=["*"], is_active=False)
    webhook_create(organization=other_organization, name="theirs", url=receiver.url, events=["*"])
    event = trigger_event(organization=organization, event="application.created", payload={})
    assert event.delivery_count == 2
    assert tasks.deliver_due() == 2
    assert {r.headers["webhook-id"] for r in receiver.wait_for(2)} == {d.message_id for d in Delivery.objects.all()}


def test_rollback_sends_nothing(organization, webhook, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            trigger_event(organization=organization, event="application.created", payload={})
            raise RuntimeError("caller fails")
    assert callbacks == []
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert tasks.deliver_due() == 0
    assert receiver.requests == []


def test_commit_enqueues_delivery_work(organization, webhook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        trigger_event(organization=organization, event="application.created", payload={})
    assert len(callbacks) == 1


def test_idempotency_key_returns_first_event_and_creates_no_deliveries(organization, webhook):
    first = trigger_event(
        organization=organization, event="application.created", payload={"a": 1}, idempotency_key="k1"
    )
    again = trigger_event(
        organization=organization, event="application.created", payload={"a": 2}, idempotency_key="k1"
    )
    assert again.pk == first.pk and again.payload == {"a": 1} and again.delivery_count == 1
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1


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


def test_timeout_and_connection_errors_are_logged_failures(organization, receiver, settings):
    settings.WEBHOOKS_TIMEOUT = 0.3
    receiver.default = Reply(delay=1.0)
    webhook_create(organization=organization, name="slow", url=receiver.url, events=["*"])
    webhook_create(organization=organization, name="closed", url="http://127.0.0.1:9/hook", events=["*"])
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    errors = dict(WebhookLog.objects.values_list("webhook__name", "error"))
    assert errors["slow"] == "Timed out after 0.3 s."
    assert errors["closed"] == "Connection refused."


def test_redirects_are_not_followed(organization, webhook, receiver):
    receiver.default = Reply(status=302, headers={"Location": "http://127.0.0.1:9/elsewhere"})
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    log = WebhookLog.objects.get()
    assert log.success is False and log.response_status == 302 and "redirects are not followed" in log.error
    assert len(receiver.requests) == 1


def test_response_excerpt_is_at_most_4_kb(organization, webhook, receiver):
    receiver.default = Reply(body=b"x" * 100_000)
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    assert len(WebhookLog.objects.get().response_body) == 4096


def test_rotated_secret_signs_beside_the_new_one_for_24_hours(organization, webhook, receiver):
    old_secret = webhook.secret
    rotated = webhook_rotate_secret(webhook=webhook)
    assert rotated.secret != old_secret
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split()) == 2
    ReferenceVerifier(old_secret).verify(request.body, request.headers)
    ReferenceVerifier(rotated.secret).verify(request.body, request.headers)
    Webhook.objects.filter(pk=webhook.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    assert len(receiver.wait_for(2)[1].headers["webhook-signature"].split()) == 1


# --- claims and leases --------------------------------------------------------------------


def test_a_claimed_delivery_cannot_be_claimed_again_until_its_lease_expires(organization, webhook, receiver):
    trigger_event(organization=organization, event="application.created", payload={})
    [claimed] = claim_due(limit=10)
    assert claim_due(limit=10) == []
    assert tasks.deliver_due() == 0  # the sweeper's task finds nothing to do either

    # The worker died mid-send: its lease expires and the delivery is claimed again.
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.sweep() == 1
    [reclaimed] = claim_due(limit=10)
    assert reclaimed.pk == claimed.pk and reclaimed.lease_token != claimed.lease_token
    assert reclaimed.attempts == 2
    process([reclaimed])
    # The dead worker's late write is ignored: its lease token no longer holds.
    process([claimed])
    received = receiver.wait_for(2)
    assert {r.headers["webhook-id"] for r in received} == {claimed.message_id}
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.SUCCEEDED and delivery.lease_token is None


def test_stale_worker_cannot_overwrite_newer_state(organization, webhook, receiver):
    receiver.default = Reply(status=500)
    trigger_event(organization=organization, event="application.created", payload={})
    [stale] = claim_due(limit=1)
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    receiver.default = Reply(status=200)
    [fresh] = claim_due(limit=1)
    process([fresh])
    receiver.default = Reply(status=500)
    process([stale])
    assert Delivery.objects.get().state == Delivery.State.SUCCEEDED


def test_sweep_counts_only_due_work(organization, webhook):
    trigger_event(organization=organization, event="application.created", payload={})
    Delivery.objects.update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert tasks.sweep() == 0
    make_due()
    assert tasks.sweep() == 1


def test_batch_is_sent_concurrently(organization, receiver, settings):
    receiver.default = Reply(delay=0.5)
    for index in range(10):
        webhook_create(organization=organization, name=f"w{index}", url=receiver.url, events=["*"])
    trigger_event(organization=organization, event="job.created", payload={})
    started = time.monotonic()
    assert tasks.deliver_due() == 10
    assert time.monotonic() - started < 2.5  # 10 x 0.5 s one after another would take 5 s
    assert WebhookLog.objects.filter(success=True).count() == 10
