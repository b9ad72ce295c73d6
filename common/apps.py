from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.signals import setting_changed

        from . import checks  # noqa: F401  (registers the system checks)
        from .fields import clear_fernet_caches

        def _on_setting_changed(*, setting, **kwargs):
            if setting in {"FERNET_KEYS", "FERNET_USE_HKDF", "SECRET_KEY"}:
                clear_fernet_caches()

        setting_changed.connect(_on_setting_changed, weak=False, dispatch_uid="common-fernet-keys")

        if settings.OTEL_ENABLED:  # off: OpenTelemetry is not even imported (common/tracing.py)
            from . import tracing

            tracing.setup()
