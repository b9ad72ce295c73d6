"""The list endpoints' rows and the stats body built by hand: the logs from `.values()` dicts (no model
instances), the webhooks from their instances; no per-field serializer machinery (about
4 ms a page of 50 logs through `WebhookLogSerializer`, bench/README.md "The logs page").
Each is byte-for-byte what its serializer gives, which stays the documented shape and the
schema's source (tests/webhooks/test_list_rows.py compares both for rows of every kind,
tests/webhooks/test_stats_body.py for stats)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rest_framework import serializers
from rest_framework.settings import ISO_8601, api_settings

from common.fields import is_readable
from common.redaction import mask_sensitive
from webhooks.masking import log_sensitive_paths, mask_body, payloads_by_delivery
from webhooks.models import Webhook, WebhookLog
from webhooks.subscriber import auth_for_reading


def datetime_representation() -> Callable[[Any], Any]:
    """DRF's `DateTimeField().to_representation` under the current settings and time zone;
    for ISO 8601 (the API's `DATETIME_FORMAT`) and an aware value, the same steps inline."""
    field = serializers.DateTimeField()
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    zone = field.default_timezone()
    if output_format is None or output_format.lower() != ISO_8601 or zone is None:
        return field.to_representation

    def iso(value: Any) -> Any:
        if not value:
            return None
        if isinstance(value, str) or value.tzinfo is None:
            return field.to_representation(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return iso


def log_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`WebhookLogSerializer(many=True).data` of `rows` (dicts of `selectors.LOG_COLUMNS`). Masking works
    out each event type's sensitive paths once and reads the payloads it needs in one query
    (none when no row has a body whose type marks something sensitive)."""
    cache: dict = {}
    masked = []
    for row in rows:
        paths = row["response_body"] and log_sensitive_paths(row["organization_id"], row["event_type"], cache)
        masked.append(paths or None)
    wanted = [row for row, paths in zip(rows, masked, strict=True) if paths]
    payloads = payloads_by_delivery(
        (row["delivery_id"] for row in wanted), {r["delivery_id"]: r["created_at"] for r in wanted}
    )
    when = datetime_representation()
    headers_as_sent = WebhookLog.headers_as_sent
    webhook_ids: dict[Any, str] = {}  # each webhook id as text, once (a page is one webhook's)
    result = []
    for row, paths in zip(rows, masked, strict=True):
        created_at = row["created_at"]
        message_id = f"msg_{row['delivery_id'].hex}"
        stored = row["custom_headers"]
        headers = headers_as_sent(stored, message_id=message_id, created_at=created_at)
        body = row["response_body"]
        status = row["response_status"]
        webhook_id = webhook_ids.get(row["webhook_id"])
        if webhook_id is None:
            webhook_id = webhook_ids[row["webhook_id"]] = str(row["webhook_id"])
        result.append(
            {
                "id": str(row["id"]),
                "webhook_id": webhook_id,
                "event": str(row["event_type"]),
                "message_id": message_id,
                "attempt": int(row["attempt"]),
                "success": bool(row["success"]),
                "status": None if status is None else int(status),
                "duration_ms": float(row["duration_ms"]),
                "error": str(row["error"]),
                "request_url": str(row["request_url"]),
                # DictField(child=CharField()): keys and values as text, None kept (without stored
                # headers, the standard ones are all text already).
                "request_headers": {str(k): None if v is None else str(v) for k, v in headers.items()}
                if stored
                else headers,
                "response_body": mask_body(body, paths, payloads[row["delivery_id"]]) if paths else body,
                "created_at": when(created_at),
            }
        )
    return result


#: `WindowStatsSerializer`'s fields: IntegerField (True) or FloatField (False), in its order
WINDOW_STATS_INTEGERS = {
    "attempts": True,
    "successes": True,
    "failures": True,
    "success_rate": False,
    "mean_duration_ms": False,
    "p50_duration_ms": False,
    "p95_duration_ms": False,
    "delivered": True,
    "mean_latency_ms": False,
    "p50_latency_ms": False,
    "p95_latency_ms": False,
}


def _window_stats(stats: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, integer in WINDOW_STATS_INTEGERS.items():
        value = stats[name]
        result[name] = None if value is None else (int(value) if integer else float(value))
    return result


def stats_body(stats: dict[str, Any]) -> dict[str, Any]:
    """`WebhookStatsSerializer(stats).data` of `selectors.webhook_stats`'s dict: the same
    values in the same order, without building its 30 fields (two nested serializers)
    on every request."""
    when = datetime_representation()
    window = stats["window"]
    body = _window_stats(stats)
    body.update(
        {
            "window": None if window is None else str(window),
            "window_stats": None if stats["window_stats"] is None else _window_stats(stats["window_stats"]),
            "last_24h": None if stats["last_24h"] is None else _window_stats(stats["last_24h"]),
        }
    )
    for name in ("pending_deliveries", "failed_deliveries", "consecutive_failures"):
        value = stats[name]
        body[name] = None if value is None else int(value)
    body["last_success_at"] = when(stats["last_success_at"])
    body["last_failure_at"] = when(stats["last_failure_at"])
    return body


def webhook_rows(webhooks: Sequence[Webhook]) -> list[dict[str, Any]]:
    """`WebhookSerializer(many=True).data` of `webhooks` (the list endpoint): the same values,
    without building the serializer's 28 fields each request and running each per row."""
    when = datetime_representation()
    result = []
    for webhook in webhooks:
        headers, auth = webhook.headers, webhook.auth
        rate_limit, max_concurrency = webhook.rate_limit, webhook.max_concurrency
        result.append(
            {
                "id": str(webhook.pk),
                "name": str(webhook.name),
                "url": str(webhook.url),
                "events": [None if event is None else str(event) for event in webhook.events],
                "integration": None if webhook.integration_id is None else str(webhook.integration_id),
                # MaskedHeadersField
                "headers": None if headers is None else (mask_sensitive(headers) if is_readable(headers) else {}),
                "retry_attempts": int(webhook.retry_attempts),
                "is_active": bool(webhook.is_active),
                "rate_limit": None if rate_limit is None else float(rate_limit),
                "max_concurrency": None if max_concurrency is None else int(max_concurrency),
                "ordered": bool(webhook.ordered),
                "secret_readable": bool(webhook.secret_readable),
                "success_count": int(webhook.success_count),
                "failure_count": int(webhook.failure_count),
                "consecutive_failures": int(webhook.consecutive_failures),
                "disabled_at": when(webhook.disabled_at),
                "disabled_reason": str(webhook.disabled_reason),
                "last_triggered_at": when(webhook.last_triggered_at),
                "last_success_at": when(webhook.last_success_at),
                "last_failure_at": when(webhook.last_failure_at),
                "created_at": when(webhook.created_at),
                "updated_at": when(webhook.updated_at),
                "filter": webhook.filter,
                "transform": str(webhook.transform),
                "auth": None if auth is None else auth_for_reading(auth),
                "client_certificate_set": bool(webhook.client_certificate_set),
                "client_certificate_expires_at": when(webhook.client_certificate_expires_at),
            }
        )
    return result
