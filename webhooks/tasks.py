"""django-q2 entry points. Thin: the database owns state, the engine does the work."""

from __future__ import annotations

from . import scheduling
from .engine import loop


def deliver_due() -> int:
    """Claim and send due deliveries until none is left (or the time budget ends), holding
    the "drain pending" marker meanwhile (webhooks/engine/loop.py `deliver_due`)."""
    return loop.deliver_due(holds_marker=True)


def sweep() -> int:
    """Every minute: enqueue delivery tasks for deliveries that are due or whose lease
    expired (a worker died, or the broker lost the task)."""
    return scheduling.sweep()


def prune_logs() -> int:
    from .services import logs_prune

    return logs_prune().logs


def create_partitions() -> list[str]:
    """Daily: create the coming days' `webhook_logs` partitions (PostgreSQL; no-op elsewhere)."""
    from . import partitions

    return partitions.ensure_partitions()


def compact_partitions() -> list[str]:
    """Daily: rebuild the indexes of the days just closed, packed (PostgreSQL; no-op elsewhere)."""
    from . import partitions

    return partitions.compact_partitions()
