from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from common.schedules import ScheduleSpec, register_schedule
        from webhooks.events import register_event

        from . import app_settings

        register_event(
            "integration.issue.opened",
            "A connection issue of an integration opened (re-authorization required, credentials "
            "rejected, provider unavailable, ...).",
        )
        register_event("integration.issue.resolved", "A connection issue of an integration resolved.")
        register_event(
            "integration.reauthorization_required",
            "An integration's grant is no longer accepted: an admin must reconnect it (`reconnect_url`).",
        )

        # From calendars (integrations/calendar/services.py): system-only, like integration.* events.
        register_event(
            "interview.rsvp_changed",
            "An attendee of an interview's calendar event answered (accepted, declined, tentative) or changed "
            "their answer, read from the calendar's change notifications.",
            system=True,
        )
        register_event(
            "interview.updated_externally",
            "An interview's calendar event was moved or cancelled on the calendar itself, not through the platform.",
            system=True,
        )
        # Renews calendar change subscriptions (Google channels, Graph subscriptions) before they expire.
        register_schedule(
            ScheduleSpec(
                name="integrations.renew_calendar_subscriptions",
                func="integrations.calendar.tasks.renew_subscriptions",
                minutes=60,
            )
        )

        # Refreshes tokens expiring before the next run, so healthy integrations never lapse.
        register_schedule(
            ScheduleSpec(
                name="integrations.refresh_expiring_tokens",
                func="integrations.tasks.refresh_expiring_tokens",
                minutes=app_settings.refresh_interval_minutes,
            )
        )
        # Deletes call-log rows older than INTEGRATIONS_CALL_LOG_RETENTION_DAYS.
        register_schedule(
            ScheduleSpec(
                name="integrations.prune_provider_calls",
                func="integrations.tasks.prune_provider_calls",
                minutes=24 * 60,
            )
        )

        # Every provider call waits on the integration's rate limits, and is logged.
        from . import calllog, ratelimit
        from .client import hooks

        hooks.register_before_call(ratelimit.before_call)
        hooks.register_after_call(calllog.record)
