"""Coalesced wake-ups: a trigger skips the enqueue only while a queued delivery task has
not started claiming (the "drain pending" marker; a database row, or a Redis key)."""

import time
from unittest import mock

import pytest

from webhooks import scheduling, tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_marker():
    scheduling.clear_drain_pending()
    yield
    scheduling.clear_drain_pending()


def enqueued(count: int, *, coalesce: bool = True) -> int:
    with mock.patch.object(scheduling, "async_task") as async_task:
        assert scheduling.enqueue_drains(count, coalesce=coalesce) == async_task.call_count
        return async_task.call_count


def test_a_queued_task_covers_later_triggers_until_it_lets_go():
    assert enqueued(1) == 1
    assert scheduling.drain_pending()
    assert enqueued(1) == 0  # the queued task will claim: it will take this one
    tasks.deliver_due()  # a task drains, then clears the marker and claims once more
    assert not scheduling.drain_pending()
    assert enqueued(1) == 1


def test_a_batch_of_deliveries_brings_a_task_even_while_one_is_pending(settings):
    settings.WEBHOOKS_BATCH_SIZE = 50
    assert enqueued(1) == 1
    assert enqueued(49) == 0
    assert enqueued(50) == 1  # a backlog gets another worker


def test_the_marker_expires(monkeypatch):
    monkeypatch.setattr(scheduling, "PENDING_TTL", scheduling.timedelta(milliseconds=200))
    assert enqueued(1) == 1
    time.sleep(0.3)
    assert enqueued(1) == 1


def test_fan_out_still_gets_parallel_tasks(settings):
    settings.WEBHOOKS_BATCH_SIZE = 50
    assert enqueued(1) == 1
    assert enqueued(1000) == scheduling.workers() * 2  # a pending task covers less than a batch


def test_sweeper_and_wakeups_do_not_coalesce():
    assert enqueued(1) == 1
    assert enqueued(1, coalesce=False) == 1


@pytest.mark.django_db(transaction=True)
def test_a_draining_task_holds_the_marker_and_no_trigger_is_left_behind(organization, receiver, monkeypatch):
    """Seam: triggers committing while drains hold, linger over and let go of the marker.
    Each enqueue starts a drain at once (a worker); triggers come 0-100 ms apart, across the
    drains' 50 ms linger. A trigger that found the marker set enqueued nothing, so a drain
    must claim its delivery: none is left pending when the drains are done. Clearing the
    marker is slowed by 20 ms, which would strand the triggers of that window if a drain
    cleared it after its last claim instead of before."""
    import random
    import threading

    from django.db import connection

    from webhooks.models import Delivery
    from webhooks.services import trigger_event, webhook_create

    webhook_create(organization=organization, name="seam", url=receiver.url, events=["job.created"])
    drains: list[threading.Thread] = []

    def drain() -> None:
        try:
            tasks.deliver_due()
        finally:
            connection.close()

    def start_drain(*args, **kwargs):
        thread = threading.Thread(target=drain)
        drains.append(thread)
        thread.start()

    real_clear = scheduling.clear_drain_pending

    def slow_clear() -> None:
        time.sleep(0.02)
        real_clear()

    monkeypatch.setattr(scheduling, "async_task", start_drain)
    monkeypatch.setattr(scheduling, "clear_drain_pending", slow_clear)
    rng = random.Random(7)
    for seq in range(60):
        trigger_event(organization=organization, event="job.created", payload={"seq": seq})
        time.sleep(rng.choice([0, 0.001, 0.01, 0.03, 0.06, 0.1]))
    deadline = time.monotonic() + 30
    while any(t.is_alive() for t in drains) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.is_alive() for t in drains)
    assert Delivery.objects.filter(state=Delivery.State.PENDING).count() == 0
    assert Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 60
    assert len({r.headers["webhook-id"] for r in receiver.wait_for(60)}) == 60
    assert len(drains) < 60  # triggers during a drain enqueued nothing


@pytest.mark.django_db(transaction=True)
def test_a_drain_holds_the_marker_while_it_sends_and_lets_go_when_done(organization, receiver):
    import threading

    from django.db import connection

    from tests.webhooks.receiver import Reply
    from webhooks.services import trigger_event, webhook_create

    receiver.default = Reply(delay=0.5)
    webhook_create(organization=organization, name="slow", url=receiver.url, events=["job.created"])
    with mock.patch.object(scheduling, "async_task"):
        trigger_event(organization=organization, event="job.created", payload={})
    scheduling.clear_drain_pending()  # as if the task ran long after its marker expired
    results: list[int] = []

    def drain() -> None:
        try:
            results.append(tasks.deliver_due())
        finally:
            connection.close()

    thread = threading.Thread(target=drain)
    thread.start()
    time.sleep(0.2)  # the drain's one send is in flight
    assert scheduling.drain_pending()
    assert enqueued(1) == 0  # a trigger now is the running drain's
    thread.join(10)
    assert results == [1]
    assert not scheduling.drain_pending()
    assert enqueued(1) == 1


@pytest.mark.django_db(transaction=True)
def test_a_drain_whose_budget_ends_as_it_lets_go_leaves_no_trigger_behind(organization, receiver, monkeypatch):
    """The drain clears the marker and its budget is spent before the claim that would
    decide: a trigger that committed just before the clear (it found the marker set, so it
    enqueued nothing) must still be claimed, or handed to a new task."""
    from tests.webhooks.receiver import Reply
    from webhooks.engine import loop
    from webhooks.models import Delivery
    from webhooks.services import trigger_event, webhook_create

    receiver.default = Reply(delay=0.05)
    webhook_create(organization=organization, name="late", url=receiver.url, events=["job.created"])
    enqueues = mock.Mock()
    monkeypatch.setattr(scheduling, "async_task", enqueues)
    trigger_event(organization=organization, event="job.created", payload={"seq": 0})
    enqueues.reset_mock()
    monkeypatch.setattr(loop, "LINGER", 0.0)
    real_clear = scheduling.clear_drain_pending
    late: list[int] = []

    def clear_after_a_trigger() -> None:
        if not late:  # a trigger commits just before the marker is cleared: it finds it set
            late.append(1)
            trigger_event(organization=organization, event="job.created", payload={"seq": 1})
        real_clear()

    monkeypatch.setattr(scheduling, "clear_drain_pending", clear_after_a_trigger)
    loop.deliver_due(time_budget=0.01, holds_marker=True)
    assert late
    stranded = Delivery.objects.filter(state=Delivery.State.PENDING).count()
    assert stranded == 0 or enqueues.called


@pytest.mark.django_db(transaction=True)
def test_a_drain_whose_deciding_claim_meets_a_rate_limit_waits_and_claims_again(organization, receiver, monkeypatch):
    """The claim after the marker was cleared finds the only delivery left waiting for its
    webhook's rate limit: the drain waits for it and sends it, rather than ending after the
    wait with it left pending (no task, no wake-up: only the sweeper would find it)."""
    from tests.webhooks.receiver import Reply
    from webhooks.engine import loop
    from webhooks.models import Delivery
    from webhooks.services import trigger_event, webhook_create

    receiver.default = Reply(delay=0.1)  # the first send outlasts the linger
    webhook_create(organization=organization, name="limited", url=receiver.url, events=["job.created"], rate_limit=2)
    enqueues = mock.Mock()
    monkeypatch.setattr(scheduling, "async_task", enqueues)
    monkeypatch.setattr(scheduling, "wake_at", mock.Mock())
    for seq in range(2):
        trigger_event(organization=organization, event="job.created", payload={"seq": seq})
    assert loop.deliver_due(time_budget=5, holds_marker=True) == 2
    assert Delivery.objects.filter(state=Delivery.State.PENDING).count() == 0
