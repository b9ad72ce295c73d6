from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from common.schedules import ScheduleSpec, register_schedule

        register_schedule(ScheduleSpec(name="webhooks.sweep", func="webhooks.tasks.sweep", minutes=1))
        register_schedule(
            ScheduleSpec(name="webhooks.create_partitions", func="webhooks.tasks.create_partitions", minutes=24 * 60)
        )
        register_schedule(
            ScheduleSpec(name="webhooks.compact_partitions", func="webhooks.tasks.compact_partitions", minutes=24 * 60)
        )
        register_schedule(ScheduleSpec(name="webhooks.prune_logs", func="webhooks.tasks.prune_logs", minutes=24 * 60))
