"""Telling workers there is work: django-q2 tasks that carry no state of their own."""

from __future__ import annotations

import logging

from django.conf import settings
from django_q.tasks import async_task

from . import app_settings

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.tasks.deliver_due"


def max_parallel_drains() -> int:
    return max(int(settings.Q_CLUSTER.get("workers", 2)), 1) * 2


def enqueue_drains(delivery_count: int) -> int:
    """Enqueue enough delivery tasks for `delivery_count` due deliveries (bounded).

    A lost task loses nothing: the sweeper finds due deliveries in the database.
    """
    if delivery_count <= 0:
        return 0
    tasks = min(-(-delivery_count // app_settings.batch_size()), max_parallel_drains())
    for _ in range(tasks):
        try:
            async_task(DELIVER_TASK)
        except Exception:  # broker down: the sweeper will pick the work up
            logger.warning("Could not enqueue a delivery task; the sweeper will retry.", exc_info=True)
            return 0
    return tasks
