"""Every way a drain of due deliveries is requested, in one place.

A delivery task (`webhooks.tasks.deliver_due`) carries no state: it claims *every* due
delivery, in batches, when it runs (docs/QUEUE.md). It is requested:

- `drain_on_commit`: after a trigger's or a recovery's transaction commits (never for a
  rolled-back one). A trigger of fewer than a batch of deliveries coalesces: while a
  delivery task is queued, or a drain holds the "drain pending" marker (it will claim
  again: webhooks/engine/loop.py `deliver_due`), that drain will claim the new
  deliveries, so no other task is enqueued.
- `wake_at`: an in-process timer for a retry due within `HORIZON` (the first retry comes
  after 5 s and the scheduler fires at most once a minute). An optimisation only: if the
  process dies, the sweeper finds the due delivery.
- `sweep`: every minute, for deliveries that are due or whose lease expired (a worker
  died, or the broker lost the task).
- `hand_over`: a task whose time budget ran out with a backlog left.

The marker lives in Redis (a key with a TTL) with the Redis broker, else in one database
row. It expires after `PENDING_TTL`, so a task lost by the broker delays later triggers by
at most that; deliveries themselves are never lost (the sweeper finds them). This module
reads the store but never imports the drain loop.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

from . import app_settings
from .engine import store

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.tasks.deliver_due"
PENDING_TTL = timedelta(seconds=5)
HORIZON = timedelta(seconds=90)

_broker: Broker | None = None
_broker_lock = threading.Lock()


def broker() -> Broker:
    """One broker per process: django-q2 otherwise opens a new connection per task."""
    global _broker
    if _broker is None:
        with _broker_lock:
            if _broker is None:
                _broker = get_broker()
    return _broker


def workers() -> int:
    return max(int(settings.Q_CLUSTER.get("workers", 2)), 1)


# --- the "drain pending" marker ------------------------------------------------------------


def _redis_key() -> str:
    return f"django_q:{settings.Q_CLUSTER['name']}:webhooks:drain-pending"


def _uses_redis() -> bool:
    return bool(settings.Q_CLUSTER.get("redis"))


def drain_pending() -> bool:
    if _uses_redis():
        return bool(broker().connection.exists(_redis_key()))
    from .models import DispatchMarker

    return DispatchMarker.objects.filter(pk=1, pending_until__gt=timezone.now()).exists()


def claim_drain_pending() -> bool:
    """Set the marker unless it is set already, in one step (one Redis round trip): True
    when this caller set it (no delivery task is queued and no drain holds it, so it must
    enqueue one), False when a queued task or a running drain will claim new work."""
    if _uses_redis():
        return bool(broker().connection.set(_redis_key(), 1, px=int(PENDING_TTL.total_seconds() * 1000), nx=True))
    if drain_pending():
        return False
    mark_drain_pending()
    return True


def mark_drain_pending() -> None:
    if _uses_redis():
        broker().connection.set(_redis_key(), 1, px=int(PENDING_TTL.total_seconds() * 1000))
        return
    from .models import DispatchMarker

    DispatchMarker.objects.update_or_create(pk=1, defaults={"pending_until": timezone.now() + PENDING_TTL})


def clear_drain_pending() -> None:
    """Called by a drain before its last claim (webhooks/engine/loop.py)."""
    if _uses_redis():
        broker().connection.delete(_redis_key())
        return
    from .models import DispatchMarker

    DispatchMarker.objects.filter(pk=1, pending_until__isnull=False).update(pending_until=None)


# --- enqueueing -----------------------------------------------------------------------------


def enqueue_drains(delivery_count: int, *, coalesce: bool = False) -> int:
    """Enqueue enough delivery tasks for `delivery_count` due deliveries (bounded).

    With `coalesce` (after a trigger committed), a delivery task that is queued, or a drain
    holding the marker (it will claim again), counts as one of them for less than a batch
    of deliveries: single triggers while a drain runs enqueue nothing, and a batch or more
    still brings a task of its own, so a backlog is drained by several workers at once.
    """
    if delivery_count <= 0:
        return 0
    batch = app_settings.batch_size()
    wanted = min(-(-delivery_count // batch), workers() * 2)
    try:
        queue = broker()
        if coalesce:
            # Before the enqueue: the task holds the marker while it drains.
            if not claim_drain_pending() and delivery_count < batch:
                wanted -= 1
            if wanted <= 0:
                return 0
        else:
            mark_drain_pending()
        for _ in range(wanted):
            async_task(DELIVER_TASK, broker=queue)
    except Exception:  # broker down: the sweeper will pick the work up
        logger.warning("Could not enqueue a delivery task; the sweeper will retry.", exc_info=True)
        return 0
    return wanted


class _Drain:
    """The on-commit request of one transaction (savepoint level): later triggers in the same
    level add to its count instead of queueing a callback each."""

    def __init__(self, delivery_count: int, coalesce: bool):
        self.delivery_count = delivery_count
        self.coalesce = coalesce

    def __call__(self) -> None:
        enqueue_drains(self.delivery_count, coalesce=self.coalesce)


def drain_on_commit(delivery_count: int, *, coalesce: bool = False) -> None:
    """Request drains for `delivery_count` new due deliveries once the transaction commits.

    Coalesced: N triggers in one transaction make one request for their total, not N.
    A count is only added to the last callback when it was registered at the current
    savepoint level, so a rolled-back savepoint discards exactly its own requests (Django
    drops the callbacks registered inside it). Outside a transaction it runs now.
    """
    if delivery_count <= 0:
        return
    connection = transaction.get_connection()
    if connection.in_atomic_block and connection.run_on_commit:
        savepoints, last, _robust = connection.run_on_commit[-1]
        if isinstance(last, _Drain) and last.coalesce == coalesce and savepoints == set(connection.savepoint_ids):
            last.delivery_count += delivery_count
            return
    transaction.on_commit(_Drain(delivery_count, coalesce))


def hand_over() -> None:
    enqueue_drains(1)


def sweep() -> int:
    count = store.due_count()
    if count:
        logger.info("Sweeper: %s deliveries due", count)
    enqueue_drains(count)
    return count


# --- wake-up timers ---------------------------------------------------------------------------

_lock = threading.Lock()
_timer: threading.Timer | None = None
_due: datetime | None = None


def wake_at(at: datetime) -> None:
    """Make sure a delivery task is enqueued at `at` (if it is within the horizon)."""
    global _timer, _due
    if not app_settings.wakeups():
        return
    now = timezone.now()
    if at - now > HORIZON:
        return  # the sweeper is early enough
    with _lock:
        if _due is not None and _due <= at and _timer is not None and _timer.is_alive():
            return
        if _timer is not None:
            _timer.cancel()
        _due = at
        delay = max((at - now).total_seconds(), 0) + 0.05
        _timer = threading.Timer(delay, _fire)
        _timer.daemon = True
        _timer.start()


def _fire() -> None:
    global _due
    with _lock:
        _due = None
    try:
        close_old_connections()
        enqueue_drains(max(store.due_count(), 1))
        upcoming = store.next_due_after(timezone.now())
        if upcoming is not None:
            wake_at(upcoming)
    except Exception:
        logger.warning("Wake-up could not enqueue delivery tasks; the sweeper will.", exc_info=True)
    finally:
        connections.close_all()
