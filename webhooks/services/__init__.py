"""Writes of the webhooks app: webhooks, events, sending now, retention.

Callers import from here (`from webhooks.services import trigger_event`); each module
holds one concern.
"""

from .event_types import event_contract, event_type_create, event_type_delete, event_type_update
from .events import (
    MAX_BATCH_EVENTS,
    TriggerResult,
    trigger_client_event,
    trigger_client_events,
    trigger_event,
    trigger_events,
    validate_client_event,
)
from .operational import emit_deliveries_exhausted, emit_webhook_disabled
from .replay import RecoverResult, deliveries_recover, log_replay, webhook_send_test
from .retention import PruneResult, logs_prune
from .webhooks import (
    MAX_RETRY_ATTEMPTS,
    WEBHOOK_FIELDS,
    headers_for_update,
    lock_webhook,
    validate_events,
    validate_secret,
    validate_webhook_fields,
    webhook_create,
    webhook_delete,
    webhook_disable,
    webhook_enable,
    webhook_rotate_secret,
    webhook_update,
)

__all__ = [
    "MAX_BATCH_EVENTS",
    "MAX_RETRY_ATTEMPTS",
    "WEBHOOK_FIELDS",
    "PruneResult",
    "RecoverResult",
    "TriggerResult",
    "deliveries_recover",
    "emit_deliveries_exhausted",
    "emit_webhook_disabled",
    "event_contract",
    "event_type_create",
    "event_type_delete",
    "event_type_update",
    "headers_for_update",
    "lock_webhook",
    "log_replay",
    "logs_prune",
    "trigger_client_event",
    "trigger_client_events",
    "trigger_event",
    "trigger_events",
    "validate_client_event",
    "validate_events",
    "validate_secret",
    "validate_webhook_fields",
    "webhook_create",
    "webhook_delete",
    "webhook_disable",
    "webhook_enable",
    "webhook_rotate_secret",
    "webhook_send_test",
    "webhook_update",
]
