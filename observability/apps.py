from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker

        from .schedules import note_schedule_success

        post_execute_in_worker.connect(note_schedule_success, dispatch_uid="observability.schedule_success")
