from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from common.schedules import ScheduleSpec, register_schedule
        from webhooks.events import register_event

        from . import app_settings

        register_event(
            "integration.unhealthy",
            "An integration failed its health check several times in a row and was marked `error`.",
        )
        register_event("integration.recovered", "An integration marked `error` by health checks passed again.")
        register_schedule(
            ScheduleSpec(
                name="health.run_checks", func="health.tasks.run_checks", minutes=app_settings.interval_minutes
            )
        )
        register_schedule(ScheduleSpec(name="health.heartbeat", func="health.tasks.heartbeat", minutes=1))
        register_schedule(ScheduleSpec(name="health.prune_history", func="health.tasks.prune_history", minutes=24 * 60))
