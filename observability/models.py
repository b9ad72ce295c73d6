from __future__ import annotations

from django.db import models


class ScheduleRun(models.Model):
    """When a django-q2 schedule's task last completed successfully (written by the worker
    that ran it, observability/schedules.py; read by `/metrics`). django-q2 keeps no
    Success rows here (`save_limit` -1), so this is the record."""

    name = models.CharField(max_length=200, primary_key=True)
    last_success_at = models.DateTimeField()

    class Meta:
        db_table = "observability_schedule_runs"

    def __str__(self) -> str:
        return f"{self.name} at {self.last_success_at.isoformat()}"
