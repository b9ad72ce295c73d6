"""The store: claims under a lease, results guarded by the lease token, counters."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webhooks.helpers import make_due
from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.engine.loop import process
from webhooks.engine.store import claim_due
from webhooks.models import Delivery, Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db


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


@pytest.mark.django_db(transaction=True)
def test_webhook_deleted_mid_batch_keeps_the_other_results(organization, receiver):
    kept = webhook_create(organization=organization, name="a", url=receiver.url, events=["*"])
    gone = webhook_create(organization=organization, name="b", url=receiver.url + "b", events=["*"])
    trigger_event(organization=organization, event="job.opened", payload={})
    batch = claim_due(limit=50)
    assert len(batch) == 2
    Webhook.objects.filter(pk=gone.pk).delete()
    process(batch)
    assert Delivery.objects.get(webhook=kept).state == Delivery.State.SUCCEEDED
    assert WebhookLog.objects.filter(webhook=kept).count() == 1


def test_a_worker_that_lost_its_lease_moves_no_counters(organization, receiver):
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    trigger_event(organization=organization, event="job.opened", payload={})
    [stale] = claim_due(limit=1)
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    [fresh] = claim_due(limit=1)
    process([fresh])
    receiver.default = Reply(status=410)
    process([stale])  # finishes late, with an answer that would disable the webhook
    webhook.refresh_from_db()
    assert webhook.success_count == 1 and webhook.failure_count == 0 and webhook.is_active
    assert WebhookLog.objects.count() == 1


def test_an_undecryptable_secret_fails_only_its_own_deliveries(organization, receiver, settings):
    from integrations.fields import clear_fernet_caches

    good = webhook_create(organization=organization, name="good", url=receiver.url, events=["*"])
    original = settings.FERNET_KEYS
    settings.FERNET_KEYS = ["a-key-that-will-be-dropped-too-early"]
    clear_fernet_caches()
    try:
        bad = webhook_create(organization=organization, name="bad", url=receiver.url, events=["*"])
    finally:
        settings.FERNET_KEYS = original
        clear_fernet_caches()
    trigger_event(organization=organization, event="job.opened", payload={})
    assert tasks.deliver_due() == 2  # the claim itself does not fail
    assert len(receiver.wait_for(1)) == 1
    assert Delivery.objects.get(webhook=good).state == Delivery.State.SUCCEEDED
    failed = WebhookLog.objects.get(webhook=bad)
    assert failed.success is False and "cannot be decrypted" in failed.error
    assert Delivery.objects.get(webhook=bad).state == Delivery.State.PENDING  # retried once keys are fixed


def test_an_expired_previous_secret_that_cannot_be_decrypted_does_not_block_signing(
    organization, receiver, settings, use_fernet_keys
):
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    original = list(settings.FERNET_KEYS)
    use_fernet_keys(["a-key-dropped-too-early"])
    Webhook.objects.filter(pk=webhook.pk).update(
        previous_secret="whsec_" + "A" * 43, previous_secret_expires_at=timezone.now() - timedelta(hours=1)
    )
    use_fernet_keys(original)
    trigger_event(organization=organization, event="job.opened", payload={})
    assert tasks.deliver_due() == 1
    assert len(receiver.wait_for(1)) == 1
    assert Delivery.objects.get().state == Delivery.State.SUCCEEDED


def test_test_events_never_move_consecutive_failures_or_disable(organization, receiver, settings):
    from webhooks.services import webhook_send_test

    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 2
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    Webhook.objects.filter(pk=webhook.pk).update(consecutive_failures=1)
    receiver.default = Reply(status=500)
    for _ in range(3):
        assert webhook_send_test(webhook=webhook).success is False
    receiver.default = Reply(status=410)
    assert webhook_send_test(webhook=webhook).response_status == 410
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.consecutive_failures == 1
    assert webhook.failure_count == 4  # still attempts, logged and counted
    receiver.default = Reply(status=200)
    assert webhook_send_test(webhook=webhook).success is True
    webhook.refresh_from_db()
    assert webhook.consecutive_failures == 1 and webhook.success_count == 1  # no reset by a test either


@pytest.mark.parametrize("status", [410, 500])
def test_the_engine_disabling_a_webhook_moves_updated_at(organization, receiver, settings, status):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 1
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"], retry_attempts=0)
    long_ago = timezone.now() - timedelta(days=3)
    Webhook.objects.filter(pk=webhook.pk).update(updated_at=long_ago)
    receiver.default = Reply(status=status)
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert not webhook.is_active and webhook.disabled_at is not None
    assert webhook.updated_at > long_ago


def test_counters_alone_do_not_move_updated_at(organization, receiver):
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    long_ago = timezone.now() - timedelta(days=3)
    Webhook.objects.filter(pk=webhook.pk).update(updated_at=long_ago)
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    webhook.refresh_from_db()
    assert webhook.success_count == 1 and webhook.last_success_at is not None
    assert webhook.updated_at == long_ago  # statistics have times of their own


def _statements(captured) -> list[str]:
    """What the engine sent, without the savepoints of the test's own transaction."""
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def test_a_claim_and_its_record_take_the_same_few_statements_whatever_their_size(organization, receiver):
    """No statement per delivery: a claim of 4 deliveries and one of 40 (two webhooks) take the
    same statements, and few of them (PostgreSQL: the caps, the lane, the webhooks, the lease;
    then the keys, the subscriber settings, and one write each for states, logs and rollups
    plus one counter UPDATE per webhook)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from webhooks.engine.flow import claim_ready

    for name in ("a", "b"):
        webhook_create(organization=organization, name=name, url=receiver.url, events=["application.created"])
    counts = []
    for events in (2, 20):
        for seq in range(events):
            trigger_event(organization=organization, event="application.created", payload={"seq": seq})
        with CaptureQueriesContext(connection) as claiming:
            claim = claim_ready(limit=2 * events, retry_limit=0)
        assert len(claim.deliveries) == 2 * events
        with CaptureQueriesContext(connection) as recording:
            process(claim.deliveries)
        receiver.wait_for(2 * events)
        assert Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == WebhookLog.objects.count()
        counts.append((len(_statements(claiming)), len(_statements(recording))))
    assert counts[0] == counts[1], counts
    assert WebhookLog.objects.count() == 44
    if connection.vendor == "postgresql":
        # claim: planner settings + caps + first attempts + webhooks + lease UPDATE; record:
        # keys + subscriber settings + planner settings + states + logs + 2 webhook counters + rollups
        assert counts[0] == (5, 8), counts
