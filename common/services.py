from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models, transaction
from django.utils import timezone
from django_q.models import Schedule

from common.schedules import registered_schedules

ModelT = TypeVar("ModelT", bound=models.Model)


def model_update(*, instance: ModelT, fields: Iterable[str], data: dict[str, Any]) -> tuple[ModelT, list[str]]:
    """Set the `fields` that `data` changes and save only those (plus an `auto_now` field).

    Returns the instance and the names of the fields it wrote ([] when nothing changed).
    Call it on a row the caller locked and re-read (`select_for_update`) when the new
    values depend on the current ones; other columns are never written back from memory.
    """
    changed = []
    for name in fields:
        if name in data and getattr(instance, name) != data[name]:
            setattr(instance, name, data[name])
            changed.append(name)
    if changed:
        update_fields = list(changed)
        for model_field in instance._meta.concrete_fields:
            if getattr(model_field, "auto_now", False) and model_field.name not in update_fields:
                update_fields.append(model_field.name)
        instance.save(update_fields=update_fields)
    return instance, changed


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
                # to plain literals (docs/QUEUE.md).
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
