from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from common.schedules import ScheduleSpec, register_schedule

        from . import app_settings

        # Refreshes tokens expiring before the next run, so healthy integrations never lapse.
        register_schedule(
            ScheduleSpec(
                name="integrations.refresh_expiring_tokens",
                func="integrations.tasks.refresh_expiring_tokens",
                minutes=app_settings.refresh_interval_minutes,
            )
        )
