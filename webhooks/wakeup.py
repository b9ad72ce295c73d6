"""Timely retries between sweeps.

django-q2 cannot delay a task and its scheduler fires at most once a minute, so after a
failure whose retry is due soon (the first retry comes after 5 s) the worker process
keeps a timer that enqueues a delivery task when it is due. The timer is an optimisation
only: if the process dies, the per-minute sweeper still finds the due delivery.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.db import close_old_connections, connections
from django.utils import timezone

from . import app_settings

logger = logging.getLogger(__name__)

HORIZON = timedelta(seconds=90)

_lock = threading.Lock()
_timer: threading.Timer | None = None
_due: datetime | None = None


def enabled() -> bool:
    return app_settings.wakeups()


def schedule(at: datetime) -> None:
    """Make sure a delivery task is enqueued at `at` (if it is within the horizon)."""
    global _timer, _due
    if not enabled():
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


def next_due_after(moment: datetime) -> datetime | None:
    from .models import Delivery

    return (
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__gt=moment)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def _fire() -> None:
    global _due
    with _lock:
        _due = None
    from .delivery import due_count
    from .dispatch import enqueue_drains

    try:
        close_old_connections()
        enqueue_drains(max(due_count(), 1))
        upcoming = next_due_after(timezone.now())
        if upcoming is not None:
            schedule(upcoming)
    except Exception:
        logger.warning("Wake-up could not enqueue delivery tasks; the sweeper will.", exc_info=True)
    finally:
        connections.close_all()
