"""Telling workers there is work: django-q2 tasks that carry no state of their own.

A delivery task claims *every* due delivery (in batches) when it runs. So a trigger need
not enqueue a task while another delivery task is queued and has not started claiming:
that one will claim the new delivery. A "drain pending" marker says so: it is set before
a task is enqueued and cleared by the task before it claims; a trigger that sees it set
(after its own transaction committed) skips the enqueue. It lives in Redis (a key with a
TTL) with the Redis broker, else in one database row. The marker expires after
`PENDING_TTL`, so a task lost by the broker delays later triggers by at most that; the
deliveries themselves are never lost (the sweeper finds due deliveries in the database).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

from . import app_settings

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.tasks.deliver_due"
PENDING_TTL = timedelta(seconds=5)

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


def mark_drain_pending() -> None:
    if _uses_redis():
        broker().connection.set(_redis_key(), 1, px=int(PENDING_TTL.total_seconds() * 1000))
        return
    from .models import DispatchMarker

    DispatchMarker.objects.update_or_create(pk=1, defaults={"pending_until": timezone.now() + PENDING_TTL})


def clear_drain_pending() -> None:
    """Called by a delivery task before it claims anything."""
    if _uses_redis():
        broker().connection.delete(_redis_key())
        return
    from .models import DispatchMarker

    DispatchMarker.objects.filter(pk=1, pending_until__isnull=False).update(pending_until=None)


def enqueue_drains(delivery_count: int, *, coalesce: bool = False) -> int:
    """Enqueue enough delivery tasks for `delivery_count` due deliveries (bounded).

    With `coalesce` (after a trigger committed), a delivery task that is queued and has
    not started claiming counts as one of them.
    """
    if delivery_count <= 0:
        return 0
    wanted = min(-(-delivery_count // app_settings.batch_size()), workers() * 2)
    try:
        queue = broker()
        if coalesce:
            if drain_pending():
                wanted -= 1
            if wanted <= 0:
                return 0
        mark_drain_pending()  # before the enqueue: the task clears it when it starts
        for _ in range(wanted):
            async_task(DELIVER_TASK, broker=queue)
    except Exception:  # broker down: the sweeper will pick the work up
        logger.warning("Could not enqueue a delivery task; the sweeper will retry.", exc_info=True)
        return 0
    return wanted
