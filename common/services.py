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


CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


@transaction.atomic
def schedules_setup() -> list[tuple[Schedule, str]]:
    """Create or update every registered schedule; safe to run any number of times.

    Returns each schedule with what happened to it: `CREATED`, `UPDATED` (its function,
    arguments or interval differed: only those are written, `next_run` is kept) or
    `UNCHANGED` (nothing written)."""
    existing = {schedule.name: schedule for schedule in Schedule.objects.select_for_update()}
    results = []
    for spec in registered_schedules():
        wanted = {
            "func": spec.func,
            # kwargs are stored as text and read back with literal_eval: keep them
            # to plain literals (docs/QUEUE.md).
            "kwargs": repr(spec.kwargs) if spec.kwargs else None,
            "schedule_type": Schedule.MINUTES,
            "minutes": spec.resolved_minutes(),
            "repeats": -1,
        }
        schedule = existing.get(spec.name)
        if schedule is None:
            schedule = Schedule.objects.create(name=spec.name, next_run=timezone.now(), **wanted)
            results.append((schedule, CREATED))
            continue
        changed = [name for name, value in wanted.items() if getattr(schedule, name) != value]
        for name in changed:
            setattr(schedule, name, wanted[name])
        if changed:
            schedule.save(update_fields=changed)
        results.append((schedule, UPDATED if changed else UNCHANGED))
    return results
