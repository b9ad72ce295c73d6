"""Events: validate, record and fan out to subscribed webhooks (one statement on PostgreSQL).

`trigger_event` is how the platform emits any event; `trigger_client_event` is what a
client's `POST /api/events/` goes through: it refuses system-only events
(`webhooks.events.is_system_event`), so a receiver can trust `integration.*` and
`webhook.*` events.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from common import app_settings as common_settings
from common.exceptions import ConflictError
from common.jsonvalues import contains_unstorable_text, nesting_exceeds
from common.text import quoted
from organizations.models import Organization

from .. import app_settings, scheduling
from ..events import ALL_EVENTS, SYSTEM_NAMESPACES, TEST_EVENT, is_known_event, is_system_event
from ..filters import matches
from ..models import Delivery, Event, Webhook

logger = logging.getLogger(__name__)


# --- events -----------------------------------------------------------------------------


def _validate_event(event: str, payload: Any) -> str:
    """Validate; returns the payload serialized as JSON."""
    if not isinstance(event, str) or not is_known_event(event) or event in {TEST_EVENT, ALL_EVENTS}:
        raise ValidationError({"event": f"Unknown event type {quoted(event)}; see /api/integrations/webhooks/events/."})
    if not isinstance(payload, dict):
        raise ValidationError({"payload": "The payload must be a JSON object."})
    # Before anything recursive (the JSON encoder) sees it: a payload nested ~1,000 deep
    # would raise RecursionError there. The API's parser refuses such bodies already; this
    # bounds Python callers the same way.
    depth = common_settings.max_json_depth()
    if nesting_exceeds(payload, depth):
        raise ValidationError({"payload": f"The payload nests objects and arrays more than {depth} levels deep."})
    try:
        serialized = json.dumps(
            payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False, cls=DjangoJSONEncoder
        )
        size = len(serialized.encode("utf-8"))  # lone surrogates fail here
    except (TypeError, ValueError):
        raise ValidationError(
            {"payload": "The payload must be JSON (no NaN or Infinity, no lone surrogates)."}
        ) from None
    if contains_unstorable_text(payload):  # PostgreSQL text and jsonb cannot hold NUL
        raise ValidationError({"payload": "The payload must not contain NUL characters."})
    if size > app_settings.max_payload_bytes():
        raise ValidationError({"payload": f"The payload exceeds {app_settings.max_payload_bytes()} bytes."})
    return serialized


SYSTEM_ONLY_MESSAGE = (
    '"{event}" is a system-only event: events in the {namespaces} namespaces (webhook.test included) are '
    "emitted by the platform itself, never through the API, so receivers can trust them. See docs/API.md §4."
)


def validate_client_event(event: str) -> None:
    """A client (the API) may trigger any catalogue event but the system-only ones."""
    if isinstance(event, str) and is_system_event(event):
        namespaces = " and ".join(f"{prefix}*" for prefix in SYSTEM_NAMESPACES)
        raise ValidationError({"event": SYSTEM_ONLY_MESSAGE.format(event=event, namespaces=namespaces)})


def trigger_client_event(
    *,
    organization: Organization,
    event: str,
    payload: dict | None = None,
    idempotency_key: str | None = None,
) -> Event:
    """`trigger_event` for an event a client sends (`POST /api/events/`): a system-only
    event is a ValidationError naming the rule."""
    validate_client_event(event)
    return trigger_event(organization=organization, event=event, payload=payload, idempotency_key=idempotency_key)


def trigger_event(
    *,
    organization: Organization,
    event: str,
    payload: dict | None = None,
    idempotency_key: str | None = None,
    exclude_webhook_ids: Collection[uuid.UUID] = (),
) -> Event:
    """Record an event and a delivery for each active webhook subscribed to it, except
    those in `exclude_webhook_ids` (an event about a webhook is never sent to it).

    May be called inside the caller's transaction: delivery tasks are enqueued only when
    it commits, so nothing is sent for a rolled-back transaction. A repeated
    `idempotency_key` returns the first event and creates no deliveries. The returned
    event has `delivery_count`. Any event of the catalogue but `webhook.test` (sent only
    by the test endpoint): this is the system's own way in; clients go through
    `trigger_client_event`.

    A repeated `idempotency_key` with another event type or payload is a `ConflictError`
    (409) naming what differs: the key identifies one event, not a slot to overwrite.
    """
    payload = {} if payload is None else payload
    serialized = _validate_event(event, payload)
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200):
        raise ValidationError({"idempotency_key": "A string of 1 to 200 characters."})
    now = timezone.now()
    excluded = list(exclude_webhook_ids) + _rejected_by_filters(organization, event, serialized, now)
    if idempotency_key is None and connection.vendor == "postgresql":
        record = _fan_out_postgres(organization, event, payload, serialized, excluded, now)
    else:
        # Stored as the JSON it is sent as (UUIDs, datetimes, decimals become strings).
        record = _fan_out(organization, event, json.loads(serialized), idempotency_key, excluded)
    if not record.is_repeat:
        scheduling.drain_on_commit(record.delivery_count, coalesce=True)
    return record


# Raw SQL: this runs on every trigger, and the ORM's query building cost several times
# the round trip it makes (bench figures in README "Benchmarks").
_FILTERED_SQL = (
    'SELECT id, events, "filter" FROM webhooks WHERE organization_id = %s AND is_active AND "filter" IS NOT NULL'
)


def _rejected_by_filters(organization: Organization, event: str, serialized: str, now: datetime) -> list[uuid.UUID]:
    """The organization's active webhooks subscribed to `event` whose content filter rejects
    it (webhooks/filters.py): one query on the partial index `webhook_org_filtered`, which
    is empty (and cheap) for an organization without filters. The body matched is the one
    sent: `{"type", "timestamp" (the trigger time), "data"}` with the payload as JSON."""
    with connection.cursor() as cursor:
        cursor.execute(_FILTERED_SQL, [Organization._meta.pk.get_db_prep_value(organization.pk, connection)])
        rows = cursor.fetchall()
    if not rows:
        return []
    body = {"type": event, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": json.loads(serialized)}
    rejected = []
    for pk, events, filter_ in rows:
        events, filter_ = _json(events), _json(filter_)
        if (ALL_EVENTS in events or event in events) and not matches(filter_, body):
            rejected.append(pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk)))
    return rejected


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


@transaction.atomic
def _fan_out(
    organization: Organization, event: str, payload: dict, idempotency_key: str | None, excluded: list[uuid.UUID]
) -> Event:
    if idempotency_key is not None:
        existing = _event_by_key(organization, idempotency_key)
        if existing is not None:
            return _repeat_of(existing, event, payload)
        try:
            with transaction.atomic():
                record = Event.objects.create(
                    organization=organization, type=event, payload=payload, idempotency_key=idempotency_key
                )
        except IntegrityError:  # a concurrent trigger with the same key won
            existing = _event_by_key(organization, idempotency_key)
            if existing is None:
                raise
            return _repeat_of(existing, event, payload)
    else:
        record = Event.objects.create(organization=organization, type=event, payload=payload)
    webhooks = [
        w
        for w in Webhook.objects.filter(organization=organization, is_active=True)
        .exclude(pk__in=excluded)
        .only("id", "events", "retry_attempts")
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
_EXCLUDING = "\n  AND w.id <> ALL(%(excluded)s::uuid[])\n"


def _fan_out_postgres(
    organization: Organization, event: str, payload: dict, serialized: str, excluded: list[uuid.UUID], now: datetime
) -> Event:
    record = Event(id=uuid.uuid4(), organization=organization, type=event, payload=payload, created_at=now)
    with connection.cursor() as cursor:
        cursor.execute(
            _FAN_OUT_SQL.rstrip("\n") + _EXCLUDING if excluded else _FAN_OUT_SQL,
            {
                "event_id": record.id,
                "organization_id": organization.pk,
                "type": event,
                "payload": serialized,
                "now": now,
                "excluded": excluded,
            },
        )
        record.delivery_count = cursor.rowcount
    record._state.adding = False
    record._state.db = connection.alias
    return record


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)


def _repeat_of(existing: Event, event: str, payload: dict) -> Event:
    """The first event of an idempotency key, when this one is the same event (same type,
    same payload compared as canonical JSON); a different one is a 409 naming what differs."""
    differs = [
        name
        for name, same in (
            ("event", existing.type == event),
            ("payload", _canonical(existing.payload) == _canonical(payload)),
        )
        if not same
    ]
    if differs:
        raise ConflictError(
            f"The idempotency key {quoted(existing.idempotency_key)} was already used for event {existing.id} "
            f"with a different {' and '.join(differs)}: use a new key for a new event.",
            errors={"idempotency_key": [f"Already used with a different {' and '.join(differs)}."]},
            extra={"event_id": str(existing.id), "conflicting_fields": differs},
        )
    return existing


def _event_by_key(organization: Organization, key: str) -> Event | None:
    event = Event.objects.filter(organization=organization, idempotency_key=key).first()
    if event is not None:
        event.delivery_count = event.deliveries.count()
        event.is_repeat = True
    return event
