"""Delivery flow (docs/WEBHOOKS.md, "Flow"): per-endpoint limits, isolation, ordered delivery.

Real receivers (tests/webhooks/receiver.py), the real engine loop, and real django-q2
clusters where several workers matter.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from tests.api_errors import error_fields
from tests.cluster import wait_until
from tests.webhooks.receiver import Received, Receiver, Reply
from webhooks.engine import loop
from webhooks.models import Delivery, Webhook
from webhooks.services import trigger_event, webhook_create

BASE = "/api/integrations/webhooks/"


class InFlight:
    """A responder that holds each request `hold` seconds and notes the most requests in
    flight at once."""

    def __init__(self, hold: float, replies: list[Reply] | None = None):
        self.hold = hold
        self.replies = list(replies or [])
        self.current = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Reply:
        with self._lock:
            self.current += 1
            self.most = max(self.most, self.current)
        threading.Timer(self.hold, self._release).start()
        reply = self.replies.pop(0) if self.replies else Reply()
        return Reply(status=reply.status, delay=self.hold)

    def _release(self) -> None:
        with self._lock:
            self.current -= 1


@pytest.fixture
def second_receiver():
    server = Receiver().start()
    yield server
    server.stop()


# --- validation (API and services) -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate_limit", 0),
        ("rate_limit", -1),
        ("rate_limit", "fast"),
        ("rate_limit", 1e9),
        ("max_concurrency", 0),
        ("max_concurrency", 1.5),
        ("max_concurrency", "two"),
        ("ordered", "maybe"),
    ],
)
def test_flow_fields_rejected_with_the_field_named(api_client, receiver, field, value):
    response = api_client.post(BASE, {"name": "a", "url": receiver.url, "events": ["*"], field: value}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in error_fields(response)
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_flow_fields_stored_and_read_back(api_client, receiver):
    body = {"name": "a", "url": receiver.url, "events": ["*"], "rate_limit": 2.5, "max_concurrency": 3}
    response = api_client.post(BASE, {**body, "ordered": True}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    created = response.json()
    assert (created["rate_limit"], created["max_concurrency"], created["ordered"]) == (2.5, 3, True)
    response = api_client.patch(f"{BASE}{created['id']}/", {"rate_limit": None, "max_concurrency": None}, format="json")
    assert response.status_code == HTTPStatus.OK
    webhook = Webhook.objects.get()
    assert (webhook.rate_limit, webhook.max_concurrency, webhook.ordered) == (None, None, True)
    response = api_client.patch(f"{BASE}{created['id']}/", {"max_concurrency": -2}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "max_concurrency" in error_fields(response)


@pytest.mark.django_db
def test_services_validate_flow_fields(organization, receiver):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        webhook_create(organization=organization, name="a", url=receiver.url, events=["*"], rate_limit=float("nan"))
    assert "rate_limit" in caught.value.message_dict


# --- lanes: first attempts before retries ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_backlog_of_retries_does_not_delay_a_first_attempt(organization, receiver, second_receiver, settings):
    settings.WEBHOOKS_SEND_CONCURRENCY = 4
    settings.WEBHOOKS_BATCH_SIZE = 4
    slow = InFlight(hold=0.5)
    receiver.responder = slow
    webhook_create(organization=organization, name="slow", url=receiver.url, events=["job.created"])
    for n in range(24):
        trigger_event(organization=organization, event="job.created", payload={"n": n})
    # They are retries now, due since a minute ago (older than any first attempt).
    Delivery.objects.update(attempts=1, next_attempt_at=timezone.now() - timedelta(minutes=1))
    webhook_create(organization=organization, name="healthy", url=second_receiver.url, events=["offer.accepted"])
    trigger_event(organization=organization, event="offer.accepted", payload={"id": 1})

    started = time.time()
    loop.deliver_due(time_budget=30)
    [first] = second_receiver.wait_for(1, timeout=5)
    # FIFO by due time would have sent 24 retries, 4 at a time for 0.5 s, before it (3 s).
    assert first.at - started < 1.0
    assert slow.most <= 2  # retries use at most half of the send slots
    assert Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 25


# --- ordered delivery -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ordered_delivery_under_a_failing_head(organization, receiver, second_receiver, settings):
    """The ordered webhook's head fails twice, then succeeds: the receiver sees its events
    one at a time, in creation order; the other webhook gets all of its events meanwhile."""
    settings.WEBHOOKS_RETRY_DELAYS = [0.3]
    tracker = InFlight(hold=0.05, replies=[Reply(status=500), Reply(status=500)])
    receiver.responder = tracker
    ordered = webhook_create(
        organization=organization, name="ordered", url=receiver.url, events=["job.created"], ordered=True
    )
    webhook_create(organization=organization, name="other", url=second_receiver.url, events=["job.created"])
    for n in range(6):
        trigger_event(organization=organization, event="job.created", payload={"n": n})

    loop.deliver_due(time_budget=5)
    # The head is waiting for its retry: the other webhook already has every event.
    assert sorted(r.json()["data"]["n"] for r in second_receiver.requests) == list(range(6))
    assert [r.json()["data"]["n"] for r in receiver.requests] == [0]
    deadline = time.time() + 20
    while Delivery.objects.filter(webhook=ordered, state=Delivery.State.PENDING).exists():
        assert time.time() < deadline, "ordered deliveries not done"
        time.sleep(0.1)
        loop.deliver_due(time_budget=5)
    received = [r.json()["data"]["n"] for r in receiver.requests]
    assert received == [0, 0, 0, 1, 2, 3, 4, 5]  # two failed attempts of the head, then in order
    assert tracker.most == 1
    assert set(Delivery.objects.filter(webhook=ordered).values_list("state", flat=True)) == {"succeeded"}


@pytest.mark.django_db(transaction=True)
def test_ordered_head_that_exhausts_its_retries_ends_failed_and_the_next_goes(organization, receiver, settings):
    settings.WEBHOOKS_RETRY_DELAYS = [0.2]
    receiver.responder = InFlight(hold=0.0, replies=[Reply(status=500), Reply(status=500)])
    ordered = webhook_create(
        organization=organization,
        name="ordered",
        url=receiver.url,
        events=["job.created"],
        ordered=True,
        retry_attempts=1,
    )
    for n in range(3):
        trigger_event(organization=organization, event="job.created", payload={"n": n})
    deadline = time.time() + 20
    while Delivery.objects.filter(webhook=ordered, state=Delivery.State.PENDING).exists():
        assert time.time() < deadline
        loop.deliver_due(time_budget=5)
        time.sleep(0.1)
    assert [r.json()["data"]["n"] for r in receiver.requests] == [0, 0, 1, 2]
    states = dict(Delivery.objects.values_list("event__payload__n", "state"))
    assert states == {0: "failed", 1: "succeeded", 2: "succeeded"}


@pytest.mark.django_db(transaction=True)
def test_a_skipped_ordered_head_releases_its_successor_at_once(organization, receiver, second_receiver):
    """A head that is not sent (its sends kept crashing the worker) ends failed; the next
    event goes in the same drain, in order, and the other webhook is not held up."""
    ordered = webhook_create(
        organization=organization, name="ordered", url=receiver.url, events=["job.created"], ordered=True
    )
    webhook_create(organization=organization, name="other", url=second_receiver.url, events=["job.created"])
    for n in range(3):
        trigger_event(organization=organization, event="job.created", payload={"n": n})
    head = Delivery.objects.filter(webhook=ordered).order_by("created_at", "pk").first()
    Delivery.objects.filter(pk=head.pk).update(attempts=head.max_attempts + 1)  # crashed its worker

    loop.deliver_due(time_budget=5)  # one drain, no new trigger
    assert [r.json()["data"]["n"] for r in receiver.wait_for(2, timeout=5)] == [1, 2]
    assert sorted(r.json()["data"]["n"] for r in second_receiver.wait_for(3, timeout=5)) == [0, 1, 2]
    head.refresh_from_db()
    assert head.state == Delivery.State.FAILED and head.last_error.startswith("Not sent")
    states = Delivery.objects.filter(webhook=ordered).exclude(pk=head.pk).values_list("state", flat=True)
    assert set(states) == {"succeeded"}


# --- with real clusters ----------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_the_rate_limit_held_across_two_clusters(organization, receiver, clusters):
    """rate_limit 4/s and max_concurrency 2, two clusters of two workers each. The bucket's
    burst is 1: takes are 1/rate apart, so any 1 s window holds at most rate + 1 arrivals."""
    rate, cap, events = 4.0, 2, 16
    tracker = InFlight(hold=0.6)  # 2 in flight x 0.6 s would allow 3.3/s: the cap must hold too
    receiver.responder = tracker
    webhook_create(
        organization=organization,
        name="limited",
        url=receiver.url,
        events=["job.created"],
        rate_limit=rate,
        max_concurrency=cap,
    )
    clusters()
    clusters()
    for n in range(events):
        trigger_event(organization=organization, event="job.created", payload={"n": n})
    arrivals = sorted(r.at for r in receiver.wait_for(events, timeout=60))
    wait_until(lambda: Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == events, timeout=30)
    for index, start in enumerate(arrivals):
        in_window = sum(1 for at in arrivals[index:] if at - start < 1.0)
        assert in_window <= rate + 1, f"{in_window} arrivals within 1 s of {start}"
    assert tracker.most <= cap
    # Deliveries left out of a claim were not counted as attempts.
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
    span = arrivals[-1] - arrivals[0]
    assert span >= (events - 1) / rate - 0.5


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_a_never_answering_webhook_does_not_delay_another(organization, receiver, second_receiver, clusters):
    """Each request to the first webhook hangs past its timeout (2 s); the healthy one's
    deliveries still arrive promptly (trigger -> receipt)."""
    receiver.default = Reply(delay=10)
    webhook_create(organization=organization, name="hangs", url=receiver.url, events=["job.created"])
    webhook_create(
        organization=organization, name="healthy", url=second_receiver.url, events=["job.created", "offer.accepted"]
    )
    clusters(WEBHOOKS_TIMEOUT="2", Q_WORKERS="2")
    trigger_event(organization=organization, event="offer.accepted", payload={"warm": True})
    second_receiver.wait_for(1, timeout=30)  # the cluster is up (a webhook.* event would do too)
    second_receiver.requests.clear()
    triggered: dict[int, float] = {}
    for n in range(40):
        triggered[n] = time.time()
        trigger_event(organization=organization, event="job.created", payload={"n": n})
        time.sleep(0.1)
    received = second_receiver.wait_for(40, timeout=30)
    latencies = sorted(r.at - triggered[r.json()["data"]["n"]] for r in received)
    # Batches recorded only when their slowest send ends would hold these for ~2 s.
    assert latencies[-1] < 1.0, latencies[-5:]
    assert len(receiver.requests) >= 1


@pytest.mark.django_db(transaction=True)
def test_one_drain_sends_an_ordered_webhooks_events_one_after_another(organization, receiver, monkeypatch):
    """Each send of an ordered webhook releases the next event: one drain (without the
    marker: no lingering) claims it, even when the send ended within `CLAIM_GAP` of its
    claim (a gap longer than a send here makes that sure)."""
    monkeypatch.setattr(loop, "CLAIM_GAP", 0.5)
    webhook_create(organization=organization, name="ordered", url=receiver.url, events=["job.created"], ordered=True)
    for n in range(3):
        trigger_event(organization=organization, event="job.created", payload={"n": n})
    assert loop.deliver_due(time_budget=5) == 3
    assert [r.json()["data"]["n"] for r in receiver.wait_for(3, timeout=5)] == [0, 1, 2]
