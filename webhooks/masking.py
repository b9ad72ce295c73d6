"""What log views show of a payload: never the values its event type's schema marks
`x-sensitive` (webhooks/schemas.py). The API's logs endpoint and the admin's log and event
pages go through here.

A log does not store the payload, but a receiver's answer may echo it: a response body is
shown with each sensitive value of the event's payload replaced by `[sensitive]`.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from .models import Event, WebhookLog
from .schemas import GENERIC_SCHEMA, mask_text, masked, sensitive_values
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


def masked_response_body(log: WebhookLog, cache: dict | None = None) -> str:
    if not log.response_body:
        return log.response_body
    event = log.delivery.event
    values = sensitive_values(event_schema(event, cache), event.payload)
    if not values:
        return log.response_body
    # Also as the JSON that carried them (a receiver echoing the body escapes the same way).
    escaped = [json.dumps(v, ensure_ascii=False)[1:-1] for v in values]
    return mask_text(log.response_body, sorted({*values, *escaped}, key=len, reverse=True))


class MaskedResponseBodyField(serializers.CharField):
    """A log's response body with the event's sensitive payload values masked."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: WebhookLog) -> str:  # type: ignore[override]  # source="*": the log
        cache = self.root.__dict__.setdefault("_schema_cache", {})
        return masked_response_body(value, cache)
