"""Telling workers there is work: django-q2 tasks that carry no state of their own.

A delivery task claims *every* due delivery (in batches) when it runs, so a trigger need
not enqueue a task when enough tasks are already waiting in the broker: one of them
will claim the new delivery. That keeps the broker's work per event constant under load.
A lost or skipped task loses nothing: the sweeper finds due deliveries in the database.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

from common.schedules import registered_schedules

from . import app_settings

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.tasks.deliver_due"

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


def enqueue_drains(delivery_count: int, *, coalesce: bool = False) -> int:
    """Enqueue enough delivery tasks for `delivery_count` due deliveries (bounded).

    With `coalesce`, tasks already waiting in the broker count towards that number.
    """
    if delivery_count <= 0:
        return 0
    wanted = min(-(-delivery_count // app_settings.batch_size()), workers() * 2)
    try:
        queue = broker()
        if coalesce:
            # The queue also holds other tasks (each schedule adds at most one per run), so
            # only tasks beyond those can be counted on to be delivery tasks.
            waiting = (queue.queue_size() or 0) - len(registered_schedules())
            wanted = min(wanted, max(workers() - waiting, 0))
        for _ in range(wanted):
            async_task(DELIVER_TASK, broker=queue)
    except Exception:  # broker down: the sweeper will pick the work up
        logger.warning("Could not enqueue a delivery task; the sweeper will retry.", exc_info=True)
        return 0
    return wanted
