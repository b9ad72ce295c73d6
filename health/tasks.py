"""django-q2 entry points: thin; the services own the logic and the state."""

from __future__ import annotations


def run_checks() -> dict:
    """Every HEALTH_CHECK_INTERVAL_MINUTES: check every monitored integration that is due."""
    from .services import health_run

    return health_run().as_dict()


def heartbeat() -> str:
    """Every minute: proves a cluster (scheduler, broker and a worker) is alive, for /healthz."""
    from django_q.conf import Conf

    from .services import heartbeat_record

    return heartbeat_record(name=Conf.CLUSTER_NAME).beat_at.isoformat()


def prune_history() -> int:
    from .services import health_history_prune

    return health_history_prune()
