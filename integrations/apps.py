from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from .fields import clear_fernet_caches

        def _on_setting_changed(*, setting, **kwargs):
            if setting in {"FERNET_KEYS", "FERNET_USE_HKDF", "SECRET_KEY"}:
                clear_fernet_caches()

        setting_changed.connect(_on_setting_changed, weak=False, dispatch_uid="integrations-fernet-keys")

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
