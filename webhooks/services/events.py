"""Events: validate, record and fan out to subscribed webhooks (one statement on PostgreSQL).

`trigger_event` is how the platform emits any event; `trigger_client_event` is what a
client's `POST /api/events/` goes through: it refuses system-only events
(`webhooks.events.is_system_event`), so a receiver can trust `integration.*` and
`webhook.*` events. `trigger_events` / `trigger_client_events` record many events at once
(`POST /api/events/batch/`): one transaction, per-item results.

On PostgreSQL every trigger, single or batch, with or without idempotency keys, is one
statement (`_FAN_OUT_SQL` and its keyed and batch shapes): an event's idempotency key is
inserted into `webhook_event_keys` with `ON CONFLICT` (webhooks/partitions.py), the event only
if its key was taken, their deliveries are inserted from the events
actually inserted (content filters evaluated in the statement: `webhooks_filter_matches`,
migration 0012). The earlier events of repeated keys (with their delivery counts and, for a
batch, whether type and payload match) are read by one more query, only when a key was
held: the trigger statements read no partitioned table, so their planning stays cheap. Other
databases take the ORM path (`_fan_out`): a constant number of queries per call.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from common import app_settings as common_settings
from common.db import prepared_cursor
from common.exceptions import ConflictError
from common.jsonvalues import contains_unstorable_text, nesting_exceeds
from common.logs import log_context
from common.text import quoted
from common.tracing import trigger_span
from organizations.models import Organization

from .. import app_settings, scheduling
from ..events import ALL_EVENTS, SYSTEM_NAMESPACES, TEST_EVENT, is_system_event
from ..filters import matches
from ..models import Delivery, Event, Webhook
from ..schemas import GENERIC_SCHEMA, validate_payload
from .event_types import event_contract

logger = logging.getLogger(__name__)


# --- events -----------------------------------------------------------------------------


def _validate_event(
    event: str, payload: Any, organization: Organization | None = None, contracts: dict[str, Any] | None = None
) -> str:
    """Validate (the event is a catalogue one or `organization`'s custom type; the payload is
    bounded JSON that its JSON Schema accepts); returns the payload serialized as JSON.
    `contracts` memoizes the contracts of a batch (a custom type is a query: one per name,
    not per item)."""
    if not isinstance(event, str):
        raise ValidationError({"event": "The event type must be a string; see /api/integrations/webhooks/events/."})
    if event in {TEST_EVENT, ALL_EVENTS}:
        contract = None
    elif contracts is None:
        contract = event_contract(event, organization=organization)
    elif event in contracts:
        contract = contracts[event]
    else:
        contract = contracts[event] = event_contract(event, organization=organization)
    if contract is None:
        raise ValidationError({"event": f"Unknown event type {quoted(event)}; see /api/integrations/webhooks/events/."})
    if not isinstance(payload, dict):
        raise ValidationError({"payload": "The payload must be a JSON object."})
    # The nesting bound (the API's parser refuses deeper bodies already; this bounds Python
    # callers the same way) is walked only when the JSON text could break it: a value nested
    # N deep has at least N brackets in its text. A payload nested ~1,000 deep makes the
    # encoder raise RecursionError: then, as for any payload the encoder refuses, the walk
    # says whether depth is the reason.
    depth = common_settings.max_json_depth()
    try:
        serialized = _PAYLOAD_ENCODER.encode(payload)
        # Lone surrogates fail the encoding (ASCII text has none, and is its own size).
        size = len(serialized) if serialized.isascii() else len(serialized.encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        if nesting_exceeds(payload, depth):
            raise _too_deep(depth) from None
        raise ValidationError(
            {"payload": "The payload must be JSON (no NaN or Infinity, no lone surrogates)."}
        ) from None
    if serialized.count("[") + serialized.count("{") > depth and nesting_exceeds(payload, depth):
        raise _too_deep(depth)
    # PostgreSQL text and jsonb cannot hold NUL. The encoder writes one as \u0000 (lone
    # surrogates failed above), so only a payload whose JSON has that text is walked.
    if "\\u0000" in serialized and contains_unstorable_text(payload):
        raise ValidationError({"payload": "The payload must not contain NUL characters."})
    limit = app_settings.max_payload_bytes()
    if size > limit:
        raise ValidationError({"payload": f"The payload exceeds {limit} bytes."})
    if contract.schema != GENERIC_SCHEMA:
        # As stored and sent: UUIDs, datetimes and decimals are strings by now.
        validate_payload(contract.schema, json.loads(serialized))
    return serialized


#: How a payload is stored and sent: compact JSON, no NaN, text as it is. One encoder for
#: all (`json.dumps` with these arguments builds a new one per call).
_PAYLOAD_ENCODER = DjangoJSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _too_deep(depth: int) -> ValidationError:
    return ValidationError({"payload": f"The payload nests objects and arrays more than {depth} levels deep."})


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
    it commits, so nothing is sent for a rolled-back transaction (and many triggers in one
    transaction make one enqueue request). A repeated `idempotency_key` returns the first
    event and creates no deliveries. The returned event has `delivery_count`. Any event of
    the catalogue but `webhook.test` (sent only by the test endpoint): this is the
    system's own way in; clients go through `trigger_client_event`.

    A repeated `idempotency_key` with another event type or payload is a `ConflictError`
    (409) naming what differs: the key identifies one event, not a slot to overwrite.
    """
    item = _prepare(0, event, {} if payload is None else payload, idempotency_key, exclude_webhook_ids, organization)
    attributes = {"webhooks.event.type": event, "organization": organization.slug}
    with (
        log_context(organization=organization.slug),
        trigger_span("webhooks.trigger_event", attributes) as (span, traceparent),
    ):
        (result,) = _record(organization, [item], traceparent)
        if result.conflict is not None:
            raise result.conflict
        record = result.event
        assert record is not None
        if span is not None:
            span.set_attributes({"webhooks.event.id": str(record.id), "webhooks.delivery_count": record.delivery_count})
        with log_context(event_id=record.id):
            if record.is_repeat:
                logger.debug("Event %s repeated its idempotency key: no new deliveries", record.id)
            else:
                logger.debug("Event %s (%s) triggered: %d deliveries", record.id, event, record.delivery_count)
                scheduling.drain_on_commit(record.delivery_count, coalesce=True)
    return record


# --- many events at once -------------------------------------------------------------------

#: The most events `trigger_events` (and `POST /api/events/batch/`) takes in one call.
MAX_BATCH_EVENTS = 1000
_ITEM_KEYS = frozenset({"event", "payload", "idempotency_key"})


@dataclass
class TriggerResult:
    """The outcome of one item of `trigger_events`, at its `index` in the request.

    `status` is "created" (a new event, `event.delivery_count` deliveries), "repeat" (its
    idempotency key named an earlier event with the same type and payload: `event` is that
    one, nothing new is sent) or "error" (`errors`, by field, as a 400 would name them;
    nothing was stored for this item)."""

    index: int
    status: Literal["created", "repeat", "error"]
    event_type: Any = None
    event: Event | None = None
    errors: dict[str, list[str]] | None = None
    #: for an idempotency conflict: the error `trigger_event` raises, and the event holding the key
    conflict: ConflictError | None = field(default=None, repr=False)
    conflict_with: Event | None = field(default=None, repr=False)


def trigger_client_events(*, organization: Organization, events: Sequence[Any]) -> list[TriggerResult]:
    """`trigger_events` for a client's batch (`POST /api/events/batch/`): a system-only event
    is that item's error, like POST /api/events/ refuses it."""
    return _trigger_many(organization, events, client=True, exclude_webhook_ids=())


def trigger_events(
    *,
    organization: Organization,
    events: Sequence[Any],
    exclude_webhook_ids: Collection[uuid.UUID] = (),
) -> list[TriggerResult]:
    """Trigger many events, each `{"event", "payload"?, "idempotency_key"?}`, in one
    transaction with a constant number of statements (one on PostgreSQL). Returns one
    `TriggerResult` per item, in order.

    An invalid item (not an object, an unknown key, an unknown event type, a payload that
    is not a JSON object or too large, a bad key) and a key already used with another type
    or payload are that item's error only: the valid items are stored and the errors
    reported. Items repeating a key (an earlier event's, or an earlier item's in the same
    call) return that event as "repeat". `events` itself must be a list of 1 to
    `MAX_BATCH_EVENTS` items, else a ValidationError and nothing is stored.
    """
    return _trigger_many(organization, events, client=False, exclude_webhook_ids=exclude_webhook_ids)


def _trigger_many(
    organization: Organization, events: Sequence[Any], *, client: bool, exclude_webhook_ids: Collection[uuid.UUID]
) -> list[TriggerResult]:
    if not isinstance(events, list | tuple) or not 0 < len(events) <= MAX_BATCH_EVENTS:
        raise ValidationError({"events": f"A list of 1 to {MAX_BATCH_EVENTS} events."})
    results: dict[int, TriggerResult] = {}
    items: list[_Item] = []
    contracts: dict[str, Any] = {}
    for index, raw in enumerate(events):
        try:
            items.append(_prepare_raw(index, raw, client, exclude_webhook_ids, organization, contracts))
        except ValidationError as error:
            results[index] = TriggerResult(
                index=index,
                status="error",
                event_type=raw.get("event") if isinstance(raw, Mapping) else None,
                errors=_field_errors(error),
            )
    if items:
        attributes = {"webhooks.event_count": len(items), "organization": organization.slug}
        with (
            log_context(organization=organization.slug),
            trigger_span("webhooks.trigger_events", attributes) as (_span, traceparent),
        ):
            # One transaction: one statement on PostgreSQL, an atomic block on the ORM path.
            for result in _record(organization, items, traceparent):
                results[result.index] = result
            created = sum(r.event.delivery_count for r in results.values() if r.status == "created" and r.event)
            logger.debug("%d events triggered in one batch: %d deliveries", len(items), created)
            scheduling.drain_on_commit(created, coalesce=True)
    return [results[index] for index in range(len(events))]


def _prepare_raw(
    index: int,
    raw: Any,
    client: bool,
    exclude_webhook_ids: Collection[uuid.UUID],
    organization: Organization,
    contracts: dict[str, Any],
) -> _Item:
    if not isinstance(raw, Mapping):
        raise ValidationError({"non_field_errors": "Each event must be an object (event, payload, idempotency_key)."})
    if not _ITEM_KEYS.issuperset(raw):
        unknown = sorted(str(key) for key in raw if key not in _ITEM_KEYS)
        raise ValidationError({key: "Unknown field (accepted: event, idempotency_key, payload)." for key in unknown})
    if "event" not in raw:
        raise ValidationError({"event": "This field is required."})
    event = raw["event"]
    if client:
        validate_client_event(event)
    payload = raw.get("payload")
    key = raw.get("idempotency_key")
    return _prepare(index, event, {} if payload is None else payload, key, exclude_webhook_ids, organization, contracts)


def _field_errors(error: ValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {name: [str(m) for m in messages] for name, messages in error.message_dict.items()}
    return {"non_field_errors": [str(m) for m in error.messages]}


# --- recording ---------------------------------------------------------------------------------


@dataclass
class _Item:
    """One validated event about to be recorded."""

    index: int
    id: uuid.UUID
    type: str
    payload: dict
    serialized: str  # the payload as the JSON stored and sent
    idempotency_key: str | None
    # Webhooks this event must not be delivered to, given by the caller (an event about a
    # webhook is never sent to it). Content filters are applied at fan-out (in the
    # statement on PostgreSQL).
    excluded: list[uuid.UUID]


def _prepare(
    index: int,
    event: str,
    payload: Any,
    idempotency_key: Any,
    exclude_webhook_ids: Collection[uuid.UUID],
    organization: Organization,
    contracts: dict[str, Any] | None = None,
) -> _Item:
    serialized = _validate_event(event, payload, organization, contracts)  # the one validation of an event
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200):
        raise ValidationError({"idempotency_key": "A string of 1 to 200 characters."})
    excluded = list(exclude_webhook_ids)
    return _Item(index, uuid.uuid4(), event, payload, serialized, idempotency_key, excluded)


def _record(organization: Organization, items: list[_Item], traceparent: str | None = None) -> list[TriggerResult]:
    """Store `items` (valid, in order) and their deliveries; one result per item. Items
    repeating an earlier item's key are answered from that item."""
    first_by_key: dict[str, _Item] = {}
    stored: list[_Item] = []
    followers: list[_Item] = []
    for item in items:
        if item.idempotency_key is None or item.idempotency_key not in first_by_key:
            stored.append(item)
            if item.idempotency_key is not None:
                first_by_key[item.idempotency_key] = item
        else:
            followers.append(item)
    if connection.vendor == "postgresql":
        # The events' time, and the `timestamp` their filters see (in the statement).
        results = _fan_out_postgres(organization, stored, timezone.now(), traceparent)
    else:
        results = _fan_out(organization, stored, traceparent)
    by_index = {r.index: r for r in results}
    for item in followers:
        leader = by_index[first_by_key[item.idempotency_key].index]  # type: ignore[index]
        first = leader.event or leader.conflict_with
        assert first is not None
        differs = _differs(first.type, first.payload, item)
        if differs:
            by_index[item.index] = _conflict_result(item, first, differs)
        else:
            by_index[item.index] = TriggerResult(item.index, "repeat", item.type, _as_repeat(first))
    return [by_index[item.index] for item in items]


def _as_repeat(event: Event) -> Event:
    repeat = Event(
        id=event.id,
        organization_id=event.organization_id,
        type=event.type,
        payload=event.payload,
        idempotency_key=event.idempotency_key,
        created_at=event.created_at,
    )
    repeat._state.adding = False
    repeat._state.db = event._state.db
    repeat.delivery_count = event.delivery_count
    repeat.is_repeat = True
    return repeat


def _differs(first_type: str, first_payload: Any, item: _Item) -> list[str]:
    return [
        name
        for name, same in (
            ("event", first_type == item.type),
            ("payload", _canonical(first_payload) == _canonical(item.payload)),
        )
        if not same
    ]


def _conflict_result(item: _Item, first: Event, differs: list[str]) -> TriggerResult:
    what = " and ".join(differs)
    error = ConflictError(
        f"The idempotency key {quoted(item.idempotency_key)} was already used for event {first.pk} "
        f"with a different {what}: use a new key for a new event.",
        errors={"idempotency_key": [f"Already used with a different {what}."]},
        extra={"event_id": str(first.pk), "conflicting_fields": differs},
    )
    return TriggerResult(
        item.index,
        "error",
        item.type,
        errors={"idempotency_key": [f"Already used for event {first.pk} with a different {what}."]},
        conflict=error,
        conflict_with=first,
    )


def _repeat_or_conflict(item: _Item, first: Event) -> TriggerResult:
    """`first` holds the item's key (stored before this call)."""
    differs = _differs(first.type, first.payload, item)
    if differs:
        return _conflict_result(item, first, differs)
    return TriggerResult(item.index, "repeat", item.type, first)


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)


def _events_by_key(organization: Organization, keys: Collection[str]) -> dict[str, Event]:
    """The stored events holding `keys`, each with its `delivery_count`, marked as repeats."""
    found: dict[str, Event] = {}
    if keys:
        # A subquery, not a GROUP BY: on PostgreSQL the events' primary key is
        # (id, created_at) (partitioned), so grouping by `id` alone would not do.
        count = (
            Delivery.objects.filter(event=OuterRef("pk")).order_by().values("event").annotate(n=Count("*")).values("n")
        )
        rows = Event.objects.filter(organization=organization, idempotency_key__in=list(keys)).annotate(
            _deliveries=Coalesce(Subquery(count), 0)
        )
        for event in rows:
            event.delivery_count = event._deliveries
            event.is_repeat = True
            found[event.idempotency_key] = event  # type: ignore[index]
    return found


def _timestamp(moment: datetime) -> str:
    """The body's `timestamp`, as webhooks/engine/sending.py writes it for the receiver."""
    return moment.isoformat().replace("+00:00", "Z")


def _fan_out(organization: Organization, items: list[_Item], traceparent: str | None = None) -> list[TriggerResult]:
    """The ORM path (SQLite): a constant number of queries whatever the number of items."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _fan_out_once(organization, items, traceparent)
        except IntegrityError:  # a concurrent trigger stored one of the keys first: read it now
            if attempt == 2 or all(item.idempotency_key is None for item in items):
                raise
    raise AssertionError("unreachable")


def _fan_out_once(organization: Organization, items: list[_Item], traceparent: str | None) -> list[TriggerResult]:
    existing = _events_by_key(organization, {i.idempotency_key for i in items if i.idempotency_key is not None})
    results: list[TriggerResult] = []
    new: list[tuple[_Item, Event]] = []
    for item in items:
        first = existing.get(item.idempotency_key) if item.idempotency_key is not None else None
        if first is not None:
            results.append(_repeat_or_conflict(item, first))
            continue
        # Stored as the JSON it is sent as (UUIDs, datetimes, decimals become strings).
        record = Event(
            id=item.id,
            organization=organization,
            type=item.type,
            payload=json.loads(item.serialized),
            idempotency_key=item.idempotency_key,
            traceparent=traceparent,
        )
        new.append((item, record))
    if not new:
        return results
    Event.objects.bulk_create([record for _, record in new])
    webhooks = list(
        Webhook.objects.filter(organization=organization, is_active=True).only(
            "id", "events", "retry_attempts", "filter"
        )
    )
    deliveries: list[Delivery] = []
    for item, record in new:
        excluded = set(item.excluded)
        targets = [w for w in webhooks if w.pk not in excluded and w.subscribes_to(item.type)]
        if any(w.filter for w in targets):
            # The body sent (webhooks/engine/sending.py), its `timestamp` the stored
            # `created_at` (set by bulk_create above), as on PostgreSQL.
            body = {"type": item.type, "timestamp": _timestamp(record.created_at), "data": record.payload}
            targets = [w for w in targets if matches(w.filter, body)]
        deliveries.extend(
            Delivery(
                organization=organization,
                event=record,
                webhook_id=w.pk,
                max_attempts=1 + w.retry_attempts,
                next_attempt_at=Now(),  # the database's clock, which workers compare with
            )
            for w in targets
        )
        record.delivery_count = len(targets)
        results.append(TriggerResult(item.index, "created", item.type, record))
    Delivery.objects.bulk_create(deliveries)
    return results


# The PostgreSQL path: one statement per call (one round trip, atomic by itself), the same
# rows as `_fan_out`. Three shapes of it, each the cheapest for its case (planning a bigger
# statement costs more than its execution here). They name the columns of webhook_events
# and webhook_deliveries: a column added to a table is added to the three.
#
# One event without an idempotency key (the hot path): the event, and a delivery per
# subscribed active webhook; the row count is the number of deliveries.
_FAN_OUT_SQL = """
WITH event AS (
    INSERT INTO webhook_events (id, organization_id, type, payload, idempotency_key, created_at, traceparent)
    VALUES (%(event_id)s, %(organization_id)s, %(type)s, %(payload)s::jsonb, NULL, %(now)s, %(traceparent)s)
    RETURNING payload
)
INSERT INTO webhook_deliveries
    (id, organization_id, event_id, webhook_id, state, attempts, max_attempts, next_attempt_at, last_error, created_at)
SELECT gen_random_uuid(), %(organization_id)s, %(event_id)s, w.id, 'pending', 0, 1 + w.retry_attempts,
       statement_timestamp(), '', %(now)s
FROM event, webhooks w
WHERE w.organization_id = %(organization_id)s AND w.is_active
  AND (w.events @> to_jsonb(%(type)s::text) OR w.events @> '"*"'::jsonb)
  AND (w."filter" IS NULL OR webhooks_filter_matches(w."filter", jsonb_build_object(
      'type', %(type)s::text, 'timestamp', %(timestamp)s::text, 'data', event.payload)))
"""
_EXCLUDING = "\n  AND w.id <> ALL(%(excluded)s::uuid[])\n"

# One event with an idempotency key: the event is inserted unless the key is held already,
# its deliveries only if it was; the answer is the new event with its delivery count, or no
# row: the key was held (before, or by a concurrent trigger that ON CONFLICT waited for), and
# the event holding it is read after by `_events_by_key`, as a repeat or a conflict. The
# statement reads no partitioned table: planning a read of webhook_events or
# webhook_deliveries by id covers each of their daily partitions (about 1 ms with 9 of them),
# which a new keyed event, the common case, would pay on every trigger. A repeat costs one
# more query. The answer's columns are the batch one's (id, delivery count).
#
# The key is held by `webhook_event_keys` (webhook_events is partitioned by day, so a unique
# index on it cannot span the days: webhooks/partitions.py): the key row is inserted unless
# the key is held, and the event only if it was. A key whose event is gone (erased, or
# deleted by the ORM) is released by `_release_dangling_keys` and the trigger retried.
_FAN_OUT_KEYED_SQL = """
WITH held_key AS (
    INSERT INTO webhook_event_keys AS k (organization_id, idempotency_key, event_id, created_at)
    VALUES (%(organization_id)s, %(key)s, %(event_id)s, %(now)s)
    ON CONFLICT (organization_id, idempotency_key) DO NOTHING
    RETURNING event_id
),
event AS (
    INSERT INTO webhook_events (id, organization_id, type, payload, idempotency_key, created_at, traceparent)
    SELECT %(event_id)s, %(organization_id)s, %(type)s, %(payload)s::jsonb, %(key)s, %(now)s, %(traceparent)s
    FROM held_key
    RETURNING id, payload
),
delivery AS (
    INSERT INTO webhook_deliveries
        (id, organization_id, event_id, webhook_id, state, attempts, max_attempts, next_attempt_at, last_error,
         created_at)
    SELECT gen_random_uuid(), %(organization_id)s, event.id, w.id, 'pending', 0, 1 + w.retry_attempts,
           statement_timestamp(), '', %(now)s
    FROM event, webhooks w
    WHERE w.organization_id = %(organization_id)s AND w.is_active
      AND (w.events @> to_jsonb(%(type)s::text) OR w.events @> '"*"'::jsonb)
      AND w.id <> ALL(%(excluded)s::uuid[])
      AND (w."filter" IS NULL OR webhooks_filter_matches(w."filter", jsonb_build_object(
          'type', %(type)s::text, 'timestamp', %(timestamp)s::text, 'data', event.payload)))
    RETURNING 1
)
SELECT event.id, (SELECT count(*) FROM delivery)
FROM event
"""

# Many events (trigger_events), with or without keys, the same in bulk:
# - `item`: the events, zipped from JSON arrays (one literal each, parsed once);
# - `excluded`: (event, webhook) pairs that get no delivery;
# - `event`: inserted unless their key is held already;
# - `delivery`: one per subscribed active webhook of each event actually inserted;
# - the answer: the inserted events with their delivery counts.
# Like the keyed single statement it reads no partitioned table: the events holding the keys
# of items that were not inserted (repeats, conflicts) are read after by `_HELD_MANY_SQL`,
# only when there are some. Planning that read of every daily partition of the events and
# the deliveries cost about as much as running the whole batch (3-7 ms for 100 events).
_FAN_OUT_MANY_SQL = """
WITH item (id, type, payload, idempotency_key) AS (
    SELECT id::uuid, type, payload, idempotency_key FROM ROWS FROM (
        jsonb_array_elements_text(%(ids)s::jsonb), jsonb_array_elements_text(%(types)s::jsonb),
        jsonb_array_elements(%(payloads)s::jsonb), jsonb_array_elements_text(%(keys)s::jsonb)
    ) AS zipped (id, type, payload, idempotency_key)
),
excluded (event_id, webhook_id) AS (
    SELECT event_id::uuid, webhook_id::uuid FROM ROWS FROM (
        jsonb_array_elements_text(%(excluded_events)s::jsonb), jsonb_array_elements_text(%(excluded_webhooks)s::jsonb)
    ) AS zipped (event_id, webhook_id)
),
held_key AS (
    INSERT INTO webhook_event_keys AS k (organization_id, idempotency_key, event_id, created_at)
    SELECT %(organization_id)s, item.idempotency_key, item.id, %(now)s
    FROM item WHERE item.idempotency_key IS NOT NULL
    ON CONFLICT (organization_id, idempotency_key) DO NOTHING
    RETURNING event_id
),
event AS (
    INSERT INTO webhook_events (id, organization_id, type, payload, idempotency_key, created_at, traceparent)
    SELECT item.id, %(organization_id)s, item.type, item.payload, item.idempotency_key, %(now)s, %(traceparent)s
    FROM item
    WHERE item.idempotency_key IS NULL OR item.id IN (SELECT event_id FROM held_key)
    RETURNING id, type, payload
),
delivery AS (
    INSERT INTO webhook_deliveries
        (id, organization_id, event_id, webhook_id, state, attempts, max_attempts, next_attempt_at, last_error,
         created_at)
    SELECT gen_random_uuid(), %(organization_id)s, event.id, w.id, 'pending', 0, 1 + w.retry_attempts,
           statement_timestamp(), '', %(now)s
    FROM event JOIN webhooks w
      ON w.organization_id = %(organization_id)s AND w.is_active
     AND (w.events @> to_jsonb(event.type::text) OR w.events @> '"*"'::jsonb)
     AND (w."filter" IS NULL OR webhooks_filter_matches(w."filter", jsonb_build_object(
         'type', event.type::text, 'timestamp', %(timestamp)s::text, 'data', event.payload)))
    WHERE NOT EXISTS (SELECT 1 FROM excluded x WHERE x.event_id = event.id AND x.webhook_id = w.id)
    RETURNING event_id
)
SELECT event.id, count(delivery.event_id)
FROM event LEFT JOIN delivery ON delivery.event_id = event.id GROUP BY event.id
"""

# The events holding the keys of a batch's items that were not inserted, with their delivery
# counts and whether type and payload are the same as the item's (compared as jsonb).
_HELD_MANY_SQL = """
WITH item (type, payload, idempotency_key) AS (
    SELECT type, payload, idempotency_key FROM ROWS FROM (
        jsonb_array_elements_text(%(types)s::jsonb), jsonb_array_elements(%(payloads)s::jsonb),
        jsonb_array_elements_text(%(keys)s::jsonb)
    ) AS zipped (type, payload, idempotency_key)
)
SELECT held.id, held.idempotency_key,
       (SELECT count(*) FROM webhook_deliveries d WHERE d.event_id = held.id),
       held.type, held.payload::text, held.created_at, held.type = item.type, held.payload = item.payload
FROM webhook_event_keys k
JOIN webhook_events held ON held.id = k.event_id
JOIN item ON item.idempotency_key = k.idempotency_key
WHERE k.organization_id = %(organization_id)s
  AND k.idempotency_key = ANY(ARRAY(SELECT idempotency_key FROM item))
"""


#: The events' columns in their model's order, as `Model.from_db` takes them.
_EVENT_FIELDS = ("id", "organization_id", "type", "payload", "idempotency_key", "created_at", "traceparent")

#: How many times a trigger retries items whose key row outlived its event (erased or pruned):
#: each retry either stores the item or finds the event that a concurrent trigger stored.
_DANGLING_RETRIES = 3


def _fan_out_postgres(
    organization: Organization,
    items: list[_Item],
    now: datetime,
    traceparent: str | None = None,
    *,
    retries: int = _DANGLING_RETRIES,
) -> list[TriggerResult]:
    # A single event's statements are prepared once per connection (common/db.py): planning
    # these inserts into the daily partitions cost about as much as running them. The batch
    # statement is not: its planning is shared by up to 1,000 events, and bound on the server
    # it ran slower (batches of 1,000: 5,671 against 9,690 events/s, PostgreSQL 15).
    with prepared_cursor() if len(items) == 1 else connection.cursor() as cursor:
        if len(items) == 1:
            (item,) = items
            params: dict[str, Any] = {
                "event_id": item.id,
                "organization_id": organization.pk,
                "type": item.type,
                "payload": item.serialized,
                "key": item.idempotency_key,
                "now": now,
                "timestamp": _timestamp(now),
                "excluded": item.excluded,
                "traceparent": traceparent,
            }
            if item.idempotency_key is None:
                cursor.execute(_FAN_OUT_SQL.rstrip("\n") + _EXCLUDING if item.excluded else _FAN_OUT_SQL, params)
                inserted: dict[uuid.UUID, int] = {item.id: cursor.rowcount}
            else:
                cursor.execute(_FAN_OUT_KEYED_SQL, params)
                inserted = dict(cursor.fetchall())
        else:
            excluded = [(item.id, webhook_id) for item in items for webhook_id in item.excluded]
            cursor.execute(
                _FAN_OUT_MANY_SQL,
                {
                    # Each column as one JSON array: one literal to quote, parsed once.
                    "ids": json.dumps([str(item.id) for item in items]),
                    "types": json.dumps([item.type for item in items]),
                    "payloads": "[" + ",".join(item.serialized for item in items) + "]",
                    "keys": json.dumps([item.idempotency_key for item in items]),
                    "excluded_events": json.dumps([str(event_id) for event_id, _ in excluded]),
                    "excluded_webhooks": json.dumps([str(webhook_id) for _, webhook_id in excluded]),
                    "organization_id": organization.pk,
                    "now": now,
                    "timestamp": _timestamp(now),
                    "traceparent": traceparent,
                },
            )
            inserted = dict(cursor.fetchall())
    # The batch's items whose key was held (an earlier event's: a repeat or a conflict, or a
    # concurrent trigger's that ON CONFLICT waited for): their events, read only now.
    refused = [item for item in items if item.id not in inserted] if len(items) > 1 else []
    held = _held_by_key(organization, refused) if refused else {}
    lost = [i.idempotency_key for i in items if i.id not in inserted and i.idempotency_key not in held]
    late = _events_by_key(organization, lost) if lost else {}  # type: ignore[arg-type]
    dangling = [i for i in items if i.idempotency_key in lost and i.idempotency_key not in late]
    retried: dict[int, TriggerResult] = {}
    if dangling and retries > 0:
        # Whether this trigger or a concurrent one released the key row, the retry stores the
        # item or, if the other trigger stored its event first, answers with that event.
        _release_dangling_keys(organization, [i.idempotency_key for i in dangling])  # type: ignore[misc]
        retried = {r.index: r for r in _fan_out_postgres(organization, dangling, now, traceparent, retries=retries - 1)}
    results: list[TriggerResult] = []
    for item in items:
        if item.id in inserted:
            # Positionally, in the order of _EVENT_FIELDS: a third of the cost of keyword arguments.
            record = Event.from_db(
                connection.alias,
                _EVENT_FIELDS,
                (item.id, organization.pk, item.type, item.payload, item.idempotency_key, now, traceparent),
            )
            record._state.fields_cache["organization"] = organization
            record.delivery_count = inserted[item.id]
            results.append(TriggerResult(item.index, "created", item.type, record))
        elif item.idempotency_key in held:
            first, same_type, same_payload = held[item.idempotency_key]
            differs = [name for name, same in (("event", same_type), ("payload", same_payload)) if not same]
            if differs:
                results.append(_conflict_result(item, first, differs))
            else:
                results.append(TriggerResult(item.index, "repeat", item.type, first))
        elif item.index in retried:
            results.append(retried[item.index])
        else:
            late_first = late.get(item.idempotency_key)  # type: ignore[arg-type]
            if late_first is None:
                raise IntegrityError(f"The event of idempotency key {quoted(item.idempotency_key)} vanished.")
            results.append(_repeat_or_conflict(item, late_first))
    return results


def _held_by_key(organization: Organization, items: list[_Item]) -> dict[str, tuple[Event, bool, bool]]:
    """For batch items whose key was held already: by key, the event holding it (with its
    delivery count, marked as a repeat) and whether its type and payload are the item's."""
    with connection.cursor() as cursor:
        cursor.execute(
            _HELD_MANY_SQL,
            {
                "types": json.dumps([item.type for item in items]),
                "payloads": "[" + ",".join(item.serialized for item in items) + "]",
                "keys": json.dumps([item.idempotency_key for item in items]),
                "organization_id": organization.pk,
            },
        )
        rows = cursor.fetchall()
    held: dict[str, tuple[Event, bool, bool]] = {}
    for event_id, key, count, type_, payload, created_at, same_type, same_payload in rows:
        first = _loaded(
            Event(
                id=event_id,
                organization=organization,
                type=type_,
                payload=json.loads(payload),
                idempotency_key=key,
                created_at=created_at,
            )
        )
        first.delivery_count = count
        first.is_repeat = True
        held[key] = (first, same_type, same_payload)
    return held


def _release_dangling_keys(organization: Organization, keys: list[str]) -> int:
    """Delete the key rows of `keys` whose event is gone (read now, so an event committed
    by a concurrent trigger since the statement began keeps its key). Returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM webhook_event_keys k WHERE k.organization_id = %s AND k.idempotency_key = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = k.event_id)",
            [organization.pk, keys],
        )
        return cursor.rowcount


def _loaded(record: Event) -> Event:
    """Mark an instance built from a row as stored (saving it again updates, never inserts)."""
    record._state.adding = False
    record._state.db = connection.alias
    return record
