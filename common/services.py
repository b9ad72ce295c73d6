from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from common.schedules import registered_schedules


@transaction.atomic
def schedules_setup() -> list[tuple[Schedule, bool]]:
    """Create or update every registered schedule; safe to run any number of times."""
    results = []
    for spec in registered_schedules():
        schedule, created = Schedule.objects.update_or_create(
            name=spec.name,
            defaults={
                "func": spec.func,
                # kwargs are stored as text and read back with literal_eval: keep them
                # to plain literals (QUEUE_NOTES.md).
                "kwargs": repr(spec.kwargs) if spec.kwargs else None,
                "schedule_type": Schedule.MINUTES,
                "minutes": spec.resolved_minutes(),
                "repeats": -1,
            },
        )
        if created:
            schedule.next_run = timezone.now()
            schedule.save(update_fields=["next_run"])
        results.append((schedule, created))
    return results
