"""Sending now: a test event, a replay of one attempt, recovery of a window of failures."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from common.exceptions import ConflictError

from .. import app_settings, scheduling
from ..engine.loop import process
from ..engine.store import SECRET_FIELDS
from ..events import TEST_EVENT
from ..models import Delivery, Event, Webhook, WebhookLog
from .webhooks import lock_webhook

logger = logging.getLogger(__name__)


# --- sending now: test, replay, recover ---------------------------------------------------


def _lease_to_caller(delivery: Delivery, now: datetime) -> None:
    """Lease the delivery to this request before it commits, so no background worker can
    claim it between the commit and the send (it is sent here, synchronously)."""
    delivery.lease_token = uuid.uuid4()
    delivery.lease_expires_at = now + timedelta(seconds=app_settings.lease_seconds())
    delivery.attempts += 1


def _send_now(delivery: Delivery) -> WebhookLog:
    delivery = (
        Delivery.objects.select_related("event", "webhook")
        .defer(*(f"webhook__{name}" for name in SECRET_FIELDS))
        .get(pk=delivery.pk)
    )
    process([delivery])
    log = WebhookLog.objects.filter(delivery=delivery).order_by("-created_at", "-attempt").first()
    if log is None:  # the lease was taken over (e.g. the webhook was deleted meanwhile)
        raise ConflictError("The delivery could not be sent right now; try again shortly.")
    return log


def webhook_send_test(*, webhook: Webhook) -> WebhookLog:
    """Send a `webhook.test` event to this webhook now (even when disabled); no retries."""
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            organization_id=webhook.organization_id,
            type=TEST_EVENT,
            payload={"webhook_id": str(webhook.pk), "message": "This is a test event."},
        )
        delivery = Delivery(
            organization_id=webhook.organization_id, event=event, webhook=webhook, max_attempts=1, next_attempt_at=now
        )
        _lease_to_caller(delivery, now)
        delivery.save(force_insert=True)
    return _send_now(delivery)


def log_replay(*, log: WebhookLog) -> WebhookLog:
    """Send the logged attempt's event to its webhook again (same `webhook-id`), now."""
    with transaction.atomic():
        # The delivery first, then its webhook: the engine records a batch in that order
        # (webhooks/engine/store.py), so the two cannot deadlock.
        delivery = Delivery.objects.select_for_update().filter(pk=log.delivery_id).first()
        if delivery is None:  # pruned (retention) or deleted since the log was read
            raise ConflictError("This attempt's delivery no longer exists (pruned or deleted): it cannot be replayed.")
        webhook = lock_webhook(log.webhook)  # the current `is_active`, not the one read with the log
        if not webhook.is_active and log.event_type != TEST_EVENT:
            raise ConflictError("The webhook is disabled: re-enable it before replaying.")
        if delivery.lease_expires_at and delivery.lease_expires_at > timezone.now():
            raise ConflictError("This delivery is being sent right now; try again shortly.")
        now = timezone.now()
        _rearm(delivery, webhook, now)
        _lease_to_caller(delivery, now)
        delivery.save(update_fields=[*REARM_FIELDS, "attempts"])
    return _send_now(delivery)


REARM_FIELDS = (
    "state",
    "max_attempts",
    "next_attempt_at",
    "finished_at",
    "last_error",
    "lease_token",
    "lease_expires_at",
)


def _rearm(delivery: Delivery, webhook: Webhook, now: datetime) -> None:
    delivery.state = Delivery.State.PENDING
    delivery.max_attempts = delivery.attempts + 1 + webhook.retry_attempts
    delivery.next_attempt_at = now
    delivery.finished_at = None
    delivery.last_error = ""
    delivery.lease_token = None
    delivery.lease_expires_at = None


@dataclass
class RecoverResult:
    recovered: int


def deliveries_recover(*, webhook: Webhook, since: datetime, until: datetime | None = None) -> RecoverResult:
    """Send again every failed delivery of this webhook created in [since, until]."""
    now = timezone.now()
    until = until or now
    if since > until:
        raise ValidationError({"since": "Must be before until."})
    with transaction.atomic():
        webhook = lock_webhook(webhook)  # the current `is_active` and `retry_attempts`
        if not webhook.is_active:
            raise ConflictError("The webhook is disabled: re-enable it before recovering.")
        failed = list(
            Delivery.objects.select_for_update()
            .filter(webhook=webhook, state=Delivery.State.FAILED, created_at__gte=since, created_at__lte=until)
            .exclude(event__type=TEST_EVENT)
        )
        for delivery in failed:
            _rearm(delivery, webhook, now)
        # Rows locked above and FAILED: the engine writes no failed delivery.
        Delivery.objects.bulk_update(failed, REARM_FIELDS, batch_size=500)
        scheduling.drain_on_commit(len(failed))
    return RecoverResult(recovered=len(failed))
