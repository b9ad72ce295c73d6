from __future__ import annotations

from django.db import models

from integrations.models import Integration


class HealthCheck(models.Model):
    """One check of one integration: its result, response time and any status change it caused."""

    class Status(models.TextChoices):
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Degraded"
        UNHEALTHY = "unhealthy", "Unhealthy"

    class Transition(models.TextChoices):
        NONE = "", "—"
        UNHEALTHY = "unhealthy", "Marked error (unhealthy)"
        RECOVERED = "recovered", "Recovered (active again)"

    id = models.BigAutoField(primary_key=True)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="health_checks")
    status = models.CharField(max_length=16, choices=Status.choices)
    response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    consecutive_unhealthy = models.PositiveIntegerField(default=0)
    transition = models.CharField(max_length=16, choices=Transition.choices, blank=True, default="")
    checked_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "health_checks"
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["integration", "-checked_at"], name="health_check_integration_time")]

    def __str__(self) -> str:
        return f"{self.integration_id} {self.status} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class HealthState(models.Model):
    """Per-integration monitoring state: the consecutive-failure count and the run's claim.

    `leased_until` is the claim: a run (or a "check now") sets it atomically before checking,
    so overlapping runs and several clusters never check one integration at the same time.
    `marked_error` says the health monitor put the integration into `error`, so only it
    takes it out again on recovery.
    """

    integration = models.OneToOneField(
        Integration, on_delete=models.CASCADE, primary_key=True, related_name="health_state"
    )
    consecutive_unhealthy = models.PositiveIntegerField(default=0)
    marked_error = models.BooleanField(default=False)
    leased_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        db_table = "health_states"

    def __str__(self) -> str:
        return f"health state of {self.integration_id}"


class ClusterHeartbeat(models.Model):
    """The last time a django-q2 cluster ran the heartbeat task (`/healthz`)."""

    name = models.CharField(max_length=200, primary_key=True)
    beat_at = models.DateTimeField()

    class Meta:
        db_table = "health_cluster_heartbeats"

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at.isoformat()}"
