"""django-q2 entry points. Thin: the database owns state, services do the work."""

from __future__ import annotations

import logging

from .delivery import deliver_due as _deliver_due
from .delivery import due_count
from .dispatch import clear_drain_pending, enqueue_drains

logger = logging.getLogger(__name__)


def deliver_due() -> int:
    """Claim and send due deliveries until none is left (or the time budget ends)."""
    clear_drain_pending()  # before claiming: later triggers must enqueue a task of their own
    return _deliver_due()


def sweep() -> int:
    """Every minute: enqueue delivery tasks for deliveries that are due or whose lease
    expired (a worker died, or the broker lost the task)."""
    count = due_count()
    if count:
        logger.info("Sweeper: %s deliveries due", count)
    enqueue_drains(count)
    return count


def prune_logs() -> int:
    from .services import logs_prune

    return logs_prune().logs
