"""A registry of the periodic django-q2 schedules the apps need.

Apps register their schedules in `AppConfig.ready()`; `manage.py setup_schedules` creates
or updates them idempotently (`update_or_create` by name, docs/QUEUE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: Callable[[], int] | int
    kwargs: dict = field(default_factory=dict)

    def resolved_minutes(self) -> int:
        return self.minutes() if callable(self.minutes) else self.minutes


_registry: dict[str, ScheduleSpec] = {}


def register_schedule(spec: ScheduleSpec) -> None:
    _registry[spec.name] = spec


def registered_schedules() -> list[ScheduleSpec]:
    return sorted(_registry.values(), key=lambda spec: spec.name)
