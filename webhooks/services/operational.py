"""Operational events about webhooks themselves: `webhook.disabled`, `webhook.delivery.exhausted`.

Each is emitted inside the transaction that makes the state change, by the writer whose
conditional UPDATE made it: the engine's lease-guarded write of a batch
(webhooks/engine/store.py), or the `is_active=True`-guarded disable of the services. So it
is emitted exactly once even when two writers race, never for a change that rolled back,
and delivered when that transaction commits, like any event.

The webhook an event is about never receives it (`exclude_webhook_ids`), and the
exhaustion of a `webhook.*` event's delivery is not announced (webhooks/engine/policy.py,
`announces_exhaustion`). Payloads name the webhook by id, name and URL (sensitive query
values masked), never its secret or headers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError

from common.redaction import REDACTED, is_sensitive_name
from organizations.models import Organization

from ..events import WEBHOOK_DELIVERY_EXHAUSTED, WEBHOOK_DISABLED
from ..models import Event, Webhook, WebhookLog
from .events import trigger_event

logger = logging.getLogger(__name__)

DisabledBy = Literal["engine", "api", "admin"]
DISABLED_BY: tuple[DisabledBy, ...] = ("engine", "api", "admin")

# Columns a payload needs; the secrets and headers are not even loaded.
_SUMMARY_FIELDS = ("id", "organization", "name", "url", "consecutive_failures", "disabled_at", "disabled_reason")


def payload_url(url: str) -> str:
    """The URL as a payload shows it: query values with sensitive names (token, key, sig...) masked."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(is_sensitive_name(name) for name, _ in query):
        return url
    masked = [(name, REDACTED if is_sensitive_name(name) else value) for name, value in query]
    return urlunsplit(parts._replace(query=urlencode(masked, safe="[]")))


def webhook_summary(*, webhook_id: uuid.UUID, name: str, url: str) -> dict:
    return {"id": str(webhook_id), "name": name, "url": payload_url(url)}


def emit_webhook_disabled(*, webhook_id: uuid.UUID, disabled_by: DisabledBy) -> Event | None:
    """Announce that `webhook_id` was just disabled, in the caller's transaction (the one
    whose conditional UPDATE disabled it)."""
    if disabled_by not in DISABLED_BY:
        raise ValueError(f"disabled_by must be one of {', '.join(DISABLED_BY)}.")
    webhook = Webhook.objects.select_related("organization").only(*_SUMMARY_FIELDS).get(pk=webhook_id)
    last_failure = (
        WebhookLog.objects.filter(webhook_id=webhook_id, success=False)
        .order_by("-created_at")
        .values("response_status", "error")
        .first()
    ) or {"response_status": None, "error": ""}
    payload = {
        "webhook": webhook_summary(webhook_id=webhook.pk, name=webhook.name, url=webhook.url),
        "reason": webhook.disabled_reason,
        "disabled_by": disabled_by,
        "disabled_at": webhook.disabled_at,
        "consecutive_failures": webhook.consecutive_failures,
        "last_status": last_failure["response_status"],
        "last_error": last_failure["error"],
    }
    return _emit(webhook.organization, WEBHOOK_DISABLED, payload, subject=webhook.pk)


def emit_deliveries_exhausted(exhausted: Iterable) -> int:
    """Announce each exhausted delivery (`webhooks.engine.policy.Exhausted`), in the
    caller's transaction (the one that wrote its final failed state). Returns how many."""
    exhausted = list(exhausted)
    if not exhausted:
        return 0
    organizations = Organization.objects.in_bulk({e.delivery.organization_id for e in exhausted})
    emitted = 0
    for item in exhausted:
        delivery, webhook = item.delivery, item.delivery.webhook
        payload = {
            "webhook": webhook_summary(webhook_id=webhook.pk, name=webhook.name, url=webhook.url),
            "delivery_id": str(delivery.pk),
            "message_id": delivery.message_id,
            "event": {"id": str(delivery.event_id), "type": delivery.event.type},
            "attempts": delivery.attempts,
            "last_status": item.status,
            "last_error": item.error,
        }
        organization = organizations[delivery.organization_id]
        emitted += _emit(organization, WEBHOOK_DELIVERY_EXHAUSTED, payload, subject=delivery.webhook_id) is not None
    return emitted


def _emit(organization: Organization, event: str, payload: dict, *, subject: uuid.UUID) -> Event | None:
    try:
        return trigger_event(organization=organization, event=event, payload=payload, exclude_webhook_ids=[subject])
    except ValidationError:
        # Only a misconfiguration gets here (WEBHOOKS_MAX_PAYLOAD_BYTES below a few hundred
        # bytes): the state change it announces must still be written.
        logger.exception("Could not emit %s about webhook %s.", event, subject)
        return None
