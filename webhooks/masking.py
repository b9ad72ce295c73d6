"""What log views show of a payload: never the values its event type's schema marks
`x-sensitive` (webhooks/schemas.py). The API's logs endpoint and the admin's log and event
pages go through here.

A log does not store the payload, but a receiver's answer may echo it: a response body is
shown with each sensitive value of the event's payload replaced by `[sensitive]`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from django.db import connection
from rest_framework import serializers

from common.db import array_literal, prepared_cursor
from organizations.models import Organization

from .events import is_custom_event
from .models import Delivery, Event, WebhookLog
from .schemas import GENERIC_SCHEMA, mask_text, masked, sensitive_paths, sensitive_values_at
from .services.event_types import event_contract


def event_schema(event: Event, cache: dict | None = None) -> dict[str, Any]:
    """The schema of `event`'s type (catalogue or its organization's custom type), cached in
    `cache` per (organization, type) so a page of logs looks each type up once."""
    key = (event.organization_id, event.type)
    if cache is not None and key in cache:
        return cache[key]
    contract = event_contract(event.type, organization=event.organization)
    schema = contract.schema if contract is not None else GENERIC_SCHEMA
    if cache is not None:
        cache[key] = schema
    return schema


def masked_payload(event: Event, cache: dict | None = None) -> Any:
    return masked(event_schema(event, cache), event.payload)


def masked_response_body(log: WebhookLog, cache: dict | None = None, payloads: dict | None = None) -> str:
    """`log.response_body` with the sensitive values of its event's payload masked. The
    payload is read only when there is a body and the type's schema marks something
    sensitive: from `payloads` (delivery id -> payload, see `payloads_for`) when given,
    else through `log.delivery.event`."""
    if not log.response_body:
        return log.response_body
    paths = log_sensitive_paths(log.organization_id, log.event_type, cache)
    if not paths:
        return log.response_body
    payload = payloads[log.delivery_id] if payloads is not None else log.delivery.event.payload
    return mask_body(log.response_body, paths, payload)


def mask_body(body: str, paths: tuple[tuple[str, ...], ...], payload: Any) -> str:
    """`body` with the values of `payload` at `paths` (sensitive ones) masked."""
    values = sensitive_values_at(paths, payload)
    if not values:
        return body
    # Also as the JSON that carried them (a receiver echoing the body escapes the same way):
    # what json.dumps(v, ensure_ascii=False) gives a string, without building an encoder.
    escaped = [encode_basestring(v)[1:-1] for v in values]
    return mask_text(body, sorted({*values, *escaped}, key=len, reverse=True))


def log_schema(organization_id: Any, event_type: str, cache: dict | None) -> dict[str, Any]:
    """The schema of a log's event type, from the log's own columns (no join): a custom
    type is looked up in the log's organization."""
    key = (organization_id, event_type)
    if cache is not None and key in cache:
        return cache[key]
    contract = event_contract(event_type, organization=Organization(pk=organization_id))
    schema = contract.schema if contract is not None else GENERIC_SCHEMA
    if cache is not None:
        cache[key] = schema
    return schema


def log_sensitive_paths(organization_id: Any, event_type: str, cache: dict | None) -> tuple[tuple[str, ...], ...]:
    """The sensitive paths of a log's event type, worked out once per type in `cache` (the
    schema's canonical JSON is what `sensitive_paths` costs, not the walk)."""
    key = ("sensitive_paths", organization_id, event_type)
    if cache is not None and key in cache:
        return cache[key]
    schema = log_schema(organization_id, event_type, cache)
    paths = tuple(sensitive_paths(schema)) if is_custom_event(event_type) else _catalogue_paths(schema)
    if cache is not None:
        cache[key] = paths
    return paths


#: id(schema) -> (schema, its sensitive paths) of catalogue schemas (and GENERIC_SCHEMA): the
#: same objects from one request to the next, unlike a custom type's, read from its row.
_CATALOGUE_PATHS: dict[int, tuple[dict[str, Any], tuple[tuple[str, ...], ...]]] = {}


def _catalogue_paths(schema: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    # Held with the schema, so that the id cannot name another object; `register_event`
    # replaces a definition (and its schema) rather than changing it.
    entry = _CATALOGUE_PATHS.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _CATALOGUE_PATHS[id(schema)] = (schema, tuple(sensitive_paths(schema)))
    return entry[1]


def payloads_for(logs: Iterable[WebhookLog], cache: dict) -> dict:
    """The payloads masking `logs` needs (those with a body whose type marks values
    sensitive), in one query, by delivery id; none when no log needs one."""
    wanted = [
        log for log in logs if log.response_body and log_sensitive_paths(log.organization_id, log.event_type, cache)
    ]
    return payloads_by_delivery(
        (log.delivery_id for log in wanted), {log.delivery_id: log.created_at for log in wanted}
    )


def payloads_by_delivery(delivery_ids: Iterable[Any], logged_at: Mapping[Any, datetime] | None = None) -> dict:
    """The event payload of each delivery (none for no ids). `logged_at`, when known, maps
    a delivery id to the time of one of its attempts, which narrows where its rows are."""
    needed = set(delivery_ids)
    if not needed:
        return {}
    if connection.vendor != "postgresql":
        return dict(Delivery.objects.filter(pk__in=needed).values_list("pk", "event__payload"))
    # Written out (the ORM's compiling and converters cost more than the query) and prepared
    # once per connection (common/db.py). By id alone, each lookup would probe a daily
    # partition after another (38 with 30 days kept: 65 ms at 5 M rows when the indexes are
    # not cached) and the plain join's plan hashed every event of every partition (594 ms).
    # So each delivery is first looked for in the days around its attempt (`logged_at`: a
    # delivery is created before its attempts, most of them within the day) and its event by
    # id and the delivery's `created_at`, which the trigger statements give both rows:
    # PostgreSQL prunes each probe to a partition or two. What that misses (a replay days
    # later, a test send's event stored apart) is looked up by id alone after.
    found: dict = {}
    with prepared_cursor() as cursor:
        if logged_at:
            near = [pk for pk in needed if pk in logged_at]
            cursor.execute(_payloads_near_sql(), [array_literal(near), array_literal(logged_at[pk] for pk in near)])
            found.update((pk, json.loads(payload)) for pk, payload in cursor.fetchall())
            needed.difference_update(found)
        if needed:
            cursor.execute(_payloads_sql(), [array_literal(needed)])
            found.update((pk, json.loads(payload)) for pk, payload in cursor.fetchall())
    return found


@functools.cache
def _payloads_near_sql() -> str:
    quote = connection.ops.quote_name
    deliveries, events = quote(Delivery._meta.db_table), quote(Event._meta.db_table)
    pk, event, payload, created = quote("id"), quote("event_id"), quote("payload"), quote("created_at")
    return (
        f"SELECT d.{pk}, e.{payload} FROM unnest(%s::uuid[], %s::timestamptz[]) AS wanted(id, logged_at) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT x.{pk}, x.{event}, x.{created} FROM {deliveries} x WHERE x.{pk} = wanted.id "
        f"AND x.{created} > wanted.logged_at - interval '24 hours' "
        f"AND x.{created} <= wanted.logged_at + interval '1 hour' LIMIT 1) d "
        f"CROSS JOIN LATERAL (SELECT y.{payload} FROM {events} y "
        f"WHERE y.{pk} = d.{event} AND y.{created} = d.{created} LIMIT 1) e"
    )


@functools.cache
def _payloads_sql() -> str:
    """Each id looked up alone (LATERAL ... LIMIT 1): a nested loop of primary-key probes,
    partition after partition until the row is found."""
    quote = connection.ops.quote_name
    deliveries, events = quote(Delivery._meta.db_table), quote(Event._meta.db_table)
    pk, event, payload = quote("id"), quote("event_id"), quote("payload")
    return (
        f"SELECT d.{pk}, e.{payload} FROM unnest(%s::uuid[]) AS wanted(id) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT {deliveries}.{pk}, {deliveries}.{event} FROM {deliveries} "
        f"WHERE {deliveries}.{pk} = wanted.id LIMIT 1) d "
        f"CROSS JOIN LATERAL (SELECT {events}.{payload} FROM {events} WHERE {events}.{pk} = d.{event} LIMIT 1) e"
    )


class MaskedResponseBodyField(serializers.CharField):
    """A log's response body with the event's sensitive payload values masked. Under a list
    serializer the payloads of the whole page are read in one query, on first use."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: WebhookLog) -> str:  # type: ignore[override]  # source="*": the log
        state = self.root.__dict__
        cache = state.setdefault("_schema_cache", {})
        if "_payloads" not in state:
            instance = self.root.instance
            logs = list(instance) if isinstance(instance, list | tuple) else [value]
            state["_payloads"] = payloads_for(logs, cache)
        payloads = state["_payloads"]
        if (
            value.delivery_id not in payloads
            and value.response_body
            and log_sensitive_paths(value.organization_id, value.event_type, cache)
        ):
            payloads.update(payloads_for([value], cache))  # an instance outside the page read first
        return masked_response_body(value, cache, payloads)
