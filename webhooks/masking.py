"""What log views show of a payload: never the values its event type's schema marks
`x-sensitive` (webhooks/schemas.py). The API's logs endpoint and the admin's log and event
pages go through here.

A log does not store the payload, but a receiver's answer may echo it: a response body is
shown with each sensitive value of the event's payload replaced by `[sensitive]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rest_framework import serializers

from organizations.models import Organization

from .models import Delivery, Event, WebhookLog
from .schemas import GENERIC_SCHEMA, mask_text, masked, sensitive_paths, sensitive_values
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
    schema = _log_schema(log, cache)
    if not sensitive_paths(schema):
        return log.response_body
    payload = payloads[log.delivery_id] if payloads is not None else log.delivery.event.payload
    values = sensitive_values(schema, payload)
    if not values:
        return log.response_body
    # Also as the JSON that carried them (a receiver echoing the body escapes the same way).
    escaped = [json.dumps(v, ensure_ascii=False)[1:-1] for v in values]
    return mask_text(log.response_body, sorted({*values, *escaped}, key=len, reverse=True))


def _log_schema(log: WebhookLog, cache: dict | None) -> dict[str, Any]:
    """The schema of a log's event type, from the log's own columns (no join): a custom
    type is looked up in the log's organization."""
    key = (log.organization_id, log.event_type)
    if cache is not None and key in cache:
        return cache[key]
    contract = event_contract(log.event_type, organization=Organization(pk=log.organization_id))
    schema = contract.schema if contract is not None else GENERIC_SCHEMA
    if cache is not None:
        cache[key] = schema
    return schema


def payloads_for(logs: Iterable[WebhookLog], cache: dict) -> dict:
    """The payloads masking `logs` needs (those with a body whose type marks values
    sensitive), in one query, by delivery id; none when no log needs one."""
    needed = {log.delivery_id for log in logs if log.response_body and sensitive_paths(_log_schema(log, cache))}
    if not needed:
        return {}
    return dict(Delivery.objects.filter(pk__in=needed).values_list("pk", "event__payload"))


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
        if value.delivery_id not in payloads and value.response_body and sensitive_paths(_log_schema(value, cache)):
            payloads.update(payloads_for([value], cache))  # an instance outside the page read first
        return masked_response_body(value, cache, payloads)
