"""The webhooks admin: webhooks (form, actions, 24-hour chart), attempt logs (replay),
deliveries and events. Registered on import, as Django's admin autodiscovery expects."""

from .logs import DeliveryAdmin, EventAdmin, WebhookLogAdmin
from .webhooks import WebhookAdmin, WebhookForm

__all__ = ["DeliveryAdmin", "EventAdmin", "WebhookAdmin", "WebhookForm", "WebhookLogAdmin"]
