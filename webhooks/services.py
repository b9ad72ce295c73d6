"""Writes: webhooks, events and deliveries."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from common.exceptions import ApplicationError, ConflictError
from common.fields import is_readable
from organizations.models import Organization

from . import app_settings
from .delivery import SECRET_FIELDS, process
from .dispatch import enqueue_drains
from .events import ALL_EVENTS, TEST_EVENT, is_known_event
from .models import Delivery, Event, Webhook, WebhookLog
from .signing import generate_secret, secret_key_bytes
from .targets import validate_headers, validate_target_url

logger = logging.getLogger(__name__)

MAX_RETRY_ATTEMPTS = 10
WEBHOOK_FIELDS = {"name", "url", "events", "headers", "retry_attempts", "is_active", "integration"}


# --- validation -------------------------------------------------------------------------


def validate_events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationError({"events": 'A non-empty list of event types (or ["*"]).'})
    unknown = [e for e in events if e != ALL_EVENTS and not is_known_event(e)]
    if unknown:
        raise ValidationError({"events": f"Unknown event types: {', '.join(sorted(set(unknown)))}."})
    return list(dict.fromkeys(events))


def _validate_webhook_fields(fields: dict[str, Any], organization: Organization | None = None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned = dict(fields)
    for name, check in (
        ("url", validate_target_url),
        ("headers", lambda value: cleaned.__setitem__("headers", validate_headers(value))),
        ("events", lambda value: cleaned.__setitem__("events", validate_events(value))),
    ):
        if name in fields:
            try:
                check(fields[name])
            except ValidationError as exc:
                errors[name] = exc.messages
    integration = fields.get("integration")
    if integration is not None and organization is not None and integration.organization_id != organization.pk:
        errors["integration"] = ["No such integration."]
    if "retry_attempts" in fields and not 0 <= int(fields["retry_attempts"]) <= MAX_RETRY_ATTEMPTS:
        errors["retry_attempts"] = [f"Between 0 and {MAX_RETRY_ATTEMPTS}."]
    if errors:
        raise ValidationError(errors)
    return cleaned


def validate_secret(secret: str) -> str:
    try:
        secret_key_bytes(secret)
    except ValueError as exc:
        raise ValidationError({"secret": str(exc)}) from None
    return secret


# --- webhooks ---------------------------------------------------------------------------


@transaction.atomic
def webhook_create(*, organization: Organization, secret: str | None = None, **fields: Any) -> Webhook:
    unknown = set(fields) - WEBHOOK_FIELDS
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    cleaned = _validate_webhook_fields(fields, organization)
    webhook = Webhook(
        organization=organization,
        secret=validate_secret(secret) if secret else generate_secret(),
        **cleaned,
    )
    if webhook.is_active is False:
        webhook.disabled_at = timezone.now()
        webhook.disabled_reason = "Created disabled."
    webhook.save()
    return webhook


@transaction.atomic
def webhook_update(*, webhook: Webhook, **fields: Any) -> Webhook:
    unknown = set(fields) - WEBHOOK_FIELDS
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    cleaned = _validate_webhook_fields(fields, webhook.organization)
    is_active = cleaned.pop("is_active", None)
    for name, value in cleaned.items():
        setattr(webhook, name, value)
    webhook.save()
    if is_active is True and not webhook.is_active:
        webhook_enable(webhook=webhook)
    elif is_active is False and webhook.is_active:
        webhook_disable(webhook=webhook, reason="Disabled by a user.")
    return webhook


@transaction.atomic
def webhook_enable(*, webhook: Webhook) -> Webhook:
    """Re-enable; the consecutive-failure count starts again from zero."""
    webhook.is_active = True
    webhook.consecutive_failures = 0
    webhook.disabled_at = None
    webhook.disabled_reason = ""
    webhook.save(update_fields=["is_active", "consecutive_failures", "disabled_at", "disabled_reason", "updated_at"])
    return webhook


@transaction.atomic
def webhook_disable(*, webhook: Webhook, reason: str) -> Webhook:
    webhook.is_active = False
    webhook.disabled_at = timezone.now()
    webhook.disabled_reason = reason[:500]
    webhook.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


@transaction.atomic
def webhook_rotate_secret(*, webhook: Webhook) -> Webhook:
    """A new secret; the old one keeps signing beside it for 24 hours.

    An old secret no key in FERNET_KEYS decrypts cannot sign: it is dropped, so rotating is
    also how an operator repairs such a webhook."""
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    if is_readable(webhook.secret):
        webhook.previous_secret = webhook.secret
        webhook.previous_secret_expires_at = timezone.now() + timedelta(hours=app_settings.secret_overlap_hours())
    else:
        webhook.previous_secret, webhook.previous_secret_expires_at = None, None
    webhook.secret = generate_secret()
    webhook.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return webhook


# --- events -----------------------------------------------------------------------------


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(v) for v in value)
    return False


def _validate_event(event: str, payload: Any) -> str:
    """Validate; returns the payload serialized as JSON."""
    if not isinstance(event, str) or not is_known_event(event) or event in {TEST_EVENT, ALL_EVENTS}:
        raise ValidationError({"event": f"Unknown event type {event!r}; see /api/integrations/webhooks/events/."})
    if not isinstance(payload, dict):
        raise ValidationError({"payload": "The payload must be a JSON object."})
    try:
        serialized = json.dumps(
            payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False, cls=DjangoJSONEncoder
        )
        size = len(serialized.encode("utf-8"))  # lone surrogates fail here
    except (TypeError, ValueError):
        raise ValidationError(
            {"payload": "The payload must be JSON (no NaN or Infinity, no lone surrogates)."}
        ) from None
    if _contains_nul(payload):  # PostgreSQL text and jsonb cannot hold NUL
        raise ValidationError({"payload": "The payload must not contain NUL characters."})
    if size > app_settings.max_payload_bytes():
        raise ValidationError({"payload": f"The payload exceeds {app_settings.max_payload_bytes()} bytes."})
    return serialized


def trigger_event(
    *,
    organization: Organization,
    event: str,
    payload: dict | None = None,
    idempotency_key: str | None = None,
) -> Event:
    """Record an event and a delivery for each active webhook subscribed to it.

    May be called inside the caller's transaction: delivery tasks are enqueued only when
    it commits, so nothing is sent for a rolled-back transaction. A repeated
    `idempotency_key` returns the first event and creates no deliveries. The returned
    event has `delivery_count`.
    """
    payload = {} if payload is None else payload
    serialized = _validate_event(event, payload)
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200):
        raise ValidationError({"idempotency_key": "A string of 1 to 200 characters."})
    if idempotency_key is None and connection.vendor == "postgresql":
        record = _fan_out_postgres(organization, event, payload, serialized)
    else:
        # Stored as the JSON it is sent as (UUIDs, datetimes, decimals become strings).
        record = _fan_out(organization, event, json.loads(serialized), idempotency_key)
    if record.delivery_count and not getattr(record, "is_repeat", False):
        count = record.delivery_count
        transaction.on_commit(lambda: enqueue_drains(count, coalesce=True))
    return record


@transaction.atomic
def _fan_out(organization: Organization, event: str, payload: dict, idempotency_key: str | None) -> Event:
    if idempotency_key is not None:
        existing = _event_by_key(organization, idempotency_key)
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                record = Event.objects.create(
                    organization=organization, type=event, payload=payload, idempotency_key=idempotency_key
                )
        except IntegrityError:  # a concurrent trigger with the same key won
            existing = _event_by_key(organization, idempotency_key)
            if existing is None:
                raise
            return existing
    else:
        record = Event.objects.create(organization=organization, type=event, payload=payload)
    webhooks = [
        w
        for w in Webhook.objects.filter(organization=organization, is_active=True).only(
            "id", "events", "retry_attempts"
        )
        if w.subscribes_to(event)
    ]
    Delivery.objects.bulk_create(
        [
            Delivery(
                organization=organization,
                event=record,
                webhook_id=w.pk,
                max_attempts=1 + w.retry_attempts,
                next_attempt_at=Now(),  # the database's clock, which workers compare with
            )
            for w in webhooks
        ]
    )
    record.delivery_count = len(webhooks)
    return record


# The hot path on PostgreSQL: the event and one delivery per subscribed active webhook in
# a single statement (one round trip, atomic by itself); same rows as `_fan_out`.
_FAN_OUT_SQL = """
WITH event AS (
    INSERT INTO webhook_events (id, organization_id, type, payload, idempotency_key, created_at)
    VALUES (%(event_id)s, %(organization_id)s, %(type)s, %(payload)s::jsonb, NULL, %(now)s)
)
INSERT INTO webhook_deliveries
    (id, organization_id, event_id, webhook_id, state, attempts, max_attempts, next_attempt_at, last_error, created_at)
SELECT gen_random_uuid(), %(organization_id)s, %(event_id)s, w.id, 'pending', 0, 1 + w.retry_attempts,
       statement_timestamp(), '', %(now)s
FROM webhooks w
WHERE w.organization_id = %(organization_id)s AND w.is_active
  AND (w.events @> to_jsonb(%(type)s::text) OR w.events @> '"*"'::jsonb)
"""


def _fan_out_postgres(organization: Organization, event: str, payload: dict, serialized: str) -> Event:
    now = timezone.now()
    record = Event(id=uuid.uuid4(), organization=organization, type=event, payload=payload, created_at=now)
    with connection.cursor() as cursor:
        cursor.execute(
            _FAN_OUT_SQL,
            {
                "event_id": record.id,
                "organization_id": organization.pk,
                "type": event,
                "payload": serialized,
                "now": now,
            },
        )
        record.delivery_count = cursor.rowcount
    record._state.adding = False
    record._state.db = connection.alias
    return record


def _event_by_key(organization: Organization, key: str) -> Event | None:
    event = Event.objects.filter(organization=organization, idempotency_key=key).first()
    if event is not None:
        event.delivery_count = event.deliveries.count()
        event.is_repeat = True
    return event


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
    return WebhookLog.objects.filter(delivery=delivery).order_by("-created_at", "-attempt").first()


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
    webhook = log.webhook
    if not webhook.is_active and log.event_type != TEST_EVENT:
        raise ConflictError("The webhook is disabled: re-enable it before replaying.")
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=log.delivery_id)
        if delivery.lease_expires_at and delivery.lease_expires_at > timezone.now():
            raise ConflictError("This delivery is being sent right now; try again shortly.")
        now = timezone.now()
        _rearm(delivery, webhook, now)
        _lease_to_caller(delivery, now)
        delivery.save()
    return _send_now(delivery)


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
    if not webhook.is_active:
        raise ConflictError("The webhook is disabled: re-enable it before recovering.")
    with transaction.atomic():
        failed = list(
            Delivery.objects.select_for_update()
            .filter(webhook=webhook, state=Delivery.State.FAILED, created_at__gte=since, created_at__lte=until)
            .exclude(event__type=TEST_EVENT)
        )
        for delivery in failed:
            _rearm(delivery, webhook, now)
        Delivery.objects.bulk_update(
            failed,
            [
                "state",
                "max_attempts",
                "next_attempt_at",
                "finished_at",
                "last_error",
                "lease_token",
                "lease_expires_at",
            ],
            batch_size=500,
        )
        if failed:
            transaction.on_commit(lambda: enqueue_drains(len(failed)))
    return RecoverResult(recovered=len(failed))


# --- retention --------------------------------------------------------------------------


@dataclass
class PruneResult:
    logs: int = 0
    deliveries: int = 0
    events: int = 0


def logs_prune(
    *,
    older_than_days: int | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress=None,
) -> PruneResult:
    """Delete attempt logs older than the retention, then finished deliveries and the
    events left without deliveries, in batches so no table is locked for long."""
    days = app_settings.log_retention_days() if older_than_days is None else older_than_days
    if days < 0 or batch_size < 1:
        raise ValidationError("older_than_days must be >= 0 and batch_size >= 1.")
    cutoff = timezone.now() - timedelta(days=days)
    result = PruneResult()
    logs = WebhookLog.objects.filter(created_at__lt=cutoff)
    deliveries = Delivery.objects.filter(
        state__in=[Delivery.State.SUCCEEDED, Delivery.State.FAILED], finished_at__lt=cutoff
    )
    events = Event.objects.filter(created_at__lt=cutoff, deliveries__isnull=True)
    if dry_run:
        return PruneResult(logs=logs.count(), deliveries=deliveries.count(), events=events.count())
    for name, queryset in (("logs", logs), ("deliveries", deliveries), ("events", events)):
        model = queryset.model
        while True:
            ids = list(queryset.values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            with transaction.atomic():
                # The filter again: a row re-armed (recover) since it was listed stays.
                batch = queryset.filter(pk__in=ids)
                if model is WebhookLog:  # nothing refers to logs: skip the collector
                    deleted = batch._raw_delete(batch.db)
                else:
                    deleted = batch.delete()[1].get(model._meta.label, 0)
            setattr(result, name, getattr(result, name) + deleted)
            if progress:
                progress(name, getattr(result, name))
    return result
