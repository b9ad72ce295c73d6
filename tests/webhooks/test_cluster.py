"""The delivery promises with real django-q2 clusters (subprocesses) and a real receiver."""

import time
from collections import Counter

import pytest

from tests.cluster import wait_until
from tests.webhooks.receiver import ConcurrencyTracker, Reply
from webhooks import tasks
from webhooks.models import Delivery, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]


def test_worker_killed_mid_send_then_delivery_completes(organization, receiver, clusters):
    """SIGKILL while the receiver holds the request; after the lease expires the delivery
    is claimed again by a new cluster and resent with the same webhook-id."""
    receiver.replies = [Reply(delay=30)]  # the first request hangs until the kill
    webhook = webhook_create(organization=organization, name="r", url=receiver.url, events=["*"])
    first = clusters(WEBHOOKS_LEASE_SECONDS="3")
    trigger_event(organization=organization, event="application.created", payload={"id": 1})
    [hung] = receiver.wait_for(1, timeout=30)
    first.kill()

    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.PENDING and delivery.lease_token is not None
    second = clusters(WEBHOOKS_LEASE_SECONDS="3")
    # Within the lease nobody sends it again...
    time.sleep(1)
    assert len(receiver.requests) == 1
    # ...then the sweeper finds the expired lease and the new cluster resends it (the new
    # cluster's own claim may take the expired lease first: then there is nothing to sweep).
    wait_until(lambda: len(receiver.requests) >= 2 or tasks.sweep() >= 1, timeout=10, interval=0.5)
    resent = receiver.wait_for(2, timeout=30)[1]
    assert resent.headers["webhook-id"] == hung.headers["webhook-id"] == delivery.message_id
    assert resent.body == hung.body
    delivery = wait_until(lambda: Delivery.objects.filter(state=Delivery.State.SUCCEEDED).first())
    assert delivery.attempts == 2
    assert webhook.logs.count() == 1  # the killed attempt left no log; the resend did
    second.stop()


def test_two_clusters_never_send_one_delivery_twice(organization, receiver, clusters):
    tracker = ConcurrencyTracker(hold=0.02)
    receiver.responder = tracker
    for index in range(3):
        webhook_create(organization=organization, name=f"w{index}", url=receiver.url, events=["*"])
    clusters()
    clusters()
    events = 60
    for n in range(events):
        trigger_event(organization=organization, event="job.created", payload={"n": n})
    try:
        receiver.wait_for(events * 3, timeout=60)
    except AssertionError:
        failures = list(WebhookLog.objects.filter(success=False).values_list("error", flat=True)[:5])
        states = Counter(Delivery.objects.values_list("state", flat=True))
        raise AssertionError(f"not all received; failed attempts: {failures}; states: {states}") from None
    try:
        wait_until(lambda: Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == events * 3)
    except AssertionError:
        rows = list(Delivery.objects.exclude(state="succeeded").values("state", "attempts", "lease_expires_at")[:5])
        logs = list(WebhookLog.objects.filter(success=False).values_list("error", flat=True)[:5])
        received = len(receiver.requests)
        raise AssertionError(f"not all succeeded: {rows}; failed attempts: {logs}; got {received}") from None
    time.sleep(1)  # anything sent twice would arrive by now
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == events * 3
    assert max(ids.values()) == 1
    assert tracker.overlaps == []
