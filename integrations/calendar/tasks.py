"""django-q2 entry points for calendars: take ids, call one service."""

from __future__ import annotations

from integrations.models import Integration

from . import services


def ensure_subscription(integration_id: str, calendar_id: str) -> str:
    integration = Integration.objects.get(pk=integration_id)
    return str(services.calendar_subscription_ensure(integration=integration, calendar_id=calendar_id).pk)


def process_changes(subscription_id: str, event_ids: list[str] | None = None) -> int:
    return services.calendar_changes_process(subscription_id=subscription_id, event_ids=event_ids)


def renew_subscriptions() -> dict[str, int]:
    return services.calendar_subscriptions_renew_due()
