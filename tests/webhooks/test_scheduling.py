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


def test_a_pending_task_covers_later_triggers_until_it_starts():
    assert enqueued(1) == 1
    assert scheduling.drain_pending()
    assert enqueued(1) == 0  # the queued task has not claimed yet: it will take this one
    tasks.deliver_due()  # a task starts: it clears the marker before claiming
    assert not scheduling.drain_pending()
    assert enqueued(1) == 1


def test_the_marker_expires(monkeypatch):
    monkeypatch.setattr(scheduling, "PENDING_TTL", scheduling.timedelta(milliseconds=200))
    assert enqueued(1) == 1
    time.sleep(0.3)
    assert enqueued(1) == 1


def test_fan_out_still_gets_parallel_tasks(settings):
    settings.WEBHOOKS_BATCH_SIZE = 50
    assert enqueued(1) == 1
    assert enqueued(1000) == scheduling.workers() * 2 - 1  # the pending task counts as one


def test_sweeper_and_wakeups_do_not_coalesce():
    assert enqueued(1) == 1
    assert enqueued(1, coalesce=False) == 1
