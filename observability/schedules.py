"""The last success of each registered schedule, noted by the worker that ran it.

django-q2 sends `post_execute_in_worker` after every task; a scheduled task carries its
schedule's name as its group (django_q/scheduler.py). Only tasks of the schedules the apps
register (common/schedules.py) write here, once per run: delivery tasks cost a set lookup.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from common.schedules import registered_schedules

logger = logging.getLogger(__name__)


def note_schedule_success(sender: Any = None, task: dict | None = None, **kwargs: Any) -> None:
    if not task or not task.get("success"):
        return
    group = task.get("group")
    if not group or group not in {spec.name for spec in registered_schedules()}:
        return
    from .models import ScheduleRun

    try:
        ScheduleRun.objects.update_or_create(
            name=group, defaults={"last_success_at": task.get("stopped") or timezone.now()}
        )
    except DatabaseError:  # a metric must never fail the task's result
        logger.warning("Could not note the success of schedule %s.", group, exc_info=True)
