"""Sending: one signed POST per delivery, a batch concurrently over the engine's client (transport).

No database access: the loop passes each webhook's signing keys in (the store reads
them), and gets back an `Outcome` per delivery. Nothing raised by one send can break the
batch: every failure becomes that delivery's outcome.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from requests_hardened.ip_filter import InvalidIPAddress

from common import tracing
from common.fields import is_readable
from common.logs import delivery_context
from common.redaction import REDACTED, mask_sensitive, redact, sensitive_values
from common.tracing import attempt_span

from .. import app_settings
from ..models import Delivery, Event
from ..retry import parse_retry_after
from ..signing import sign
from ..transforms import TransformError, apply_transform
from . import transport
from .policy import UNREADABLE_HEADERS, UNREADABLE_SECRET, Outcome
from .subscriber_auth import SubscriberContext

logger = logging.getLogger(__name__)

#: decoded bytes of a receiver's answer read (then the connection is dropped); the excerpt
#: stored is shorter still (`WEBHOOKS_RESPONSE_EXCERPT_BYTES`)
MAX_BODY_READ = 64 * 1024

_executor: ThreadPoolExecutor | None = None
_executor_size = 0


def _message(event: Event) -> dict:
    return {"type": event.type, "timestamp": event.created_at.isoformat().replace("+00:00", "Z"), "data": event.payload}


def _encode(message: dict) -> bytes:
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()


def event_body(event: Event) -> bytes:
    """The request body; the same bytes on every attempt of the event."""
    return _encode(_message(event))


def transformed_body(event: Event, expression: str) -> bytes:
    """The body of a webhook with a transform (webhooks/transforms.py): its result is `data`.
    TransformError when the expression fails on this event, or its result is too large."""
    message = _message(event)
    try:
        body = _encode({**message, "data": apply_transform(expression, message)})
    except (TypeError, ValueError, RecursionError):
        raise TransformError("Transform failed: its result is not JSON.") from None
    if len(body) > app_settings.max_payload_bytes() + 1024:
        raise TransformError(f"Transform failed: its result exceeds {app_settings.max_payload_bytes()} bytes.")
    return body


def loggable_headers(headers: dict[str, str], custom: dict[str, str]) -> dict[str, str]:
    """The request's headers as logged: custom ones with sensitive names masked."""
    return {**mask_sensitive(custom), **headers}


def error_text(exc: Exception, timeout: float) -> str:
    """A short, secret-free description of a failed request."""
    if isinstance(exc, InvalidIPAddress):
        return "Refused: the destination address is not public (SSRF protection)."
    if isinstance(exc, requests.Timeout):
        return f"Timed out after {timeout:g} s."
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error."
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "Failed to resolve" in text or "Name or service not known" in text:
            return "Could not resolve the host."
        if "refused" in text.lower():
            return "Connection refused."
        if "reset" in text.lower() or "aborted" in text.lower() or "RemoteDisconnected" in text:
            return "Connection closed by the receiver."
        return "Connection error."
    return f"Request failed ({type(exc).__name__})."


def send_one(
    delivery: Delivery, body: bytes, keys: list[bytes], subscriber: SubscriberContext | None = None
) -> Outcome:
    """One attempt. Its log lines carry the event and delivery ids (and never the
    webhook's custom header values); with tracing on, its span is a child of the span
    that triggered the event."""
    secrets = sensitive_values(delivery.webhook.headers)
    if subscriber is not None and subscriber.bearer:
        secrets.append(subscriber.bearer)
    with delivery_context(delivery.event_id, delivery.pk, secrets):
        if tracing.enabled():
            with attempt_span("webhooks.deliver", delivery.event.traceparent, _span_attributes(delivery)) as span:
                outcome = _attempt(delivery, body, keys, subscriber)
                if span is not None:
                    if outcome.status is not None:
                        span.set_attribute("http.response.status_code", outcome.status)
                    span.set_attribute("webhooks.attempt.success", outcome.success)
        else:
            outcome = _attempt(delivery, body, keys, subscriber)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "Attempt %d of delivery %s: %s in %.0f ms",
                delivery.attempts,  # counted when claimed
                delivery.message_id,
                f"HTTP {outcome.status}" if outcome.status is not None else outcome.error,
                outcome.duration_ms,
            )
    return outcome


def _span_attributes(delivery: Delivery) -> dict[str, str | int]:
    return {
        "webhooks.event.id": str(delivery.event_id),
        "webhooks.event.type": delivery.event.type,
        "webhooks.delivery.id": str(delivery.pk),
        "webhooks.webhook.id": str(delivery.webhook_id),
        "webhooks.attempt": delivery.attempts,  # counted when claimed
    }


def _attempt(
    delivery: Delivery, body: bytes, keys: list[bytes], subscriber: SubscriberContext | None = None
) -> Outcome:
    webhook = delivery.webhook
    # The log's time is the attempt's start; its `webhook-timestamp` is rebuilt from it.
    started_at = timezone.now()
    timestamp = int(started_at.timestamp())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(msg_id=delivery.message_id, timestamp=timestamp, body=body, keys=keys),
    }
    custom = webhook.headers or {}
    outcome = Outcome(delivery=delivery, started_at=started_at, request_headers=loggable_headers(headers, custom))
    # Subscriber auth (webhooks/engine/subscriber_auth.py): the bearer token replaces a custom
    # Authorization header; logged masked, and redacted from an echoing receiver's answer.
    extra: dict[str, str] = {}
    if subscriber is not None and subscriber.bearer:
        custom = {name: value for name, value in custom.items() if name.lower() != "authorization"}
        extra["Authorization"] = f"Bearer {subscriber.bearer}"
        outcome.request_headers = {**loggable_headers(headers, custom), "Authorization": REDACTED}
    cert = subscriber.certificate_file if subscriber is not None else None
    timeout = app_settings.request_timeout()
    started = time.perf_counter()
    try:
        target = _target(webhook.pk, webhook.url, {**custom, **extra, "content-type": headers["content-type"]})
        own = {name: value for name, value in headers.items() if name != "content-type"}
        with _client_span(target, own) as span:
            answer = transport.post(
                target,
                transport.request_head(target, own, len(body)),
                body,
                timeout=timeout,
                limit=MAX_BODY_READ,  # a longer answer is cut, not an error: success is the status
                allow_private=app_settings.allow_private_urls(),
                verify=app_settings.ca_bundle(),
                cert=cert,
            )
            if span is not None:
                span.set_attribute("http.response.status_code", answer.status)
        secrets = sensitive_values(custom) + ([subscriber.bearer] if subscriber and subscriber.bearer else [])
        _fill_from_response(outcome, answer, secrets)
    except transport.SendError as exc:
        outcome.error = str(exc)
    except Exception as exc:  # never let one delivery break the batch
        logger.exception("Unexpected error delivering %s", delivery.message_id)
        outcome.error = f"Unexpected error ({type(exc).__name__})."
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    return outcome


#: webhook id -> (the settings it was built with, when last used, its `transport.Target`):
#: see `_target`
_templates: dict[uuid.UUID, tuple[tuple, float, transport.Target]] = {}
_templates_lock = threading.Lock()
MAX_TEMPLATES = 1024
#: a webhook's template unused this long is dropped (with the credentials it holds)
TEMPLATE_IDLE_SECONDS = 600.0


def _target(webhook_id: uuid.UUID, url: str, fixed: dict[str, str]) -> transport.Target:
    """The webhook's request template: what only depends on the webhook (the URL parsed and
    checked, the head with its fixed headers encoded) is built once per process and webhook;
    each delivery only adds its own headers and body.

    One template per webhook, kept with what it was built from (URL, fixed headers: custom
    ones and the subscriber's bearer token, the user agent): when any of them changes (a
    token refreshed, headers or URL edited) the next delivery builds a new one and the old
    one, with the old credentials, is dropped at once; one unused for
    `TEMPLATE_IDLE_SECONDS` is dropped when another is built. Signing keys never enter a
    template (the signature is a per-delivery header)."""
    user_agent = app_settings.user_agent()
    settings = (url, tuple(fixed.items()), user_agent)
    now = time.monotonic()
    with _templates_lock:
        cached = _templates.get(webhook_id)
        if cached is not None and cached[0] == settings:
            _templates[webhook_id] = (settings, now, cached[2])
            return cached[2]
    template = transport.Target.build(url, fixed, user_agent=user_agent)
    with _templates_lock:
        _forget_idle(now)
        if len(_templates) >= MAX_TEMPLATES:
            _templates.clear()
        _templates[webhook_id] = (settings, now, template)
    return template


@contextmanager
def _client_span(target: transport.Target, headers: dict[str, str]) -> Iterator[Any]:
    """With tracing on, the request's client span (a child of the attempt's), whose W3C
    `traceparent` goes out with the request."""
    if not tracing.enabled():
        yield None
        return
    with tracing.client_span(f"POST {target.host}", target.scheme, target.host, target.port) as span:
        tracing.inject(headers)
        yield span


def _forget_idle(now: float) -> None:
    for webhook_id in [pk for pk, (_, used, _) in _templates.items() if now - used > TEMPLATE_IDLE_SECONDS]:
        del _templates[webhook_id]


def _fill_from_response(outcome: Outcome, answer: transport.Answer, secrets: list[str]) -> None:
    outcome.status = answer.status
    # PostgreSQL text cannot hold NUL: one receiver's odd answer must not fail the batch.
    # A receiver may echo the request (debug pages, echo servers): keep its secrets out.
    text = redact(answer.body.decode("utf-8", "replace").replace("\x00", "\ufffd"), secrets)
    outcome.body_excerpt = text.encode()[: app_settings.response_excerpt_bytes()].decode("utf-8", "ignore")
    outcome.success = 200 <= answer.status < 300
    outcome.gone = answer.status == 410
    if not outcome.success:
        outcome.error = f"HTTP {answer.status}"
        if 300 <= answer.status < 400:
            outcome.error += " (redirects are not followed)"
        outcome.retry_after = parse_retry_after(answer.headers.get("retry-after"))


def pool(size: int) -> ThreadPoolExecutor:
    """The process's send threads (at least `size` of them)."""
    return _pool(size)


def _pool(size: int) -> ThreadPoolExecutor:
    global _executor, _executor_size
    if _executor is None or _executor_size != size:
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook-send")
        _executor_size = size
    return _executor


def send_batch(
    deliveries: list[Delivery],
    keys: dict[uuid.UUID, list[bytes] | None],
    *,
    now: datetime,
    subscribers: dict[uuid.UUID, SubscriberContext] | None = None,
    bodies: dict[uuid.UUID, bytes] | None = None,
) -> list[Outcome]:
    """Send each delivery (concurrently); a webhook whose keys are None (its secret cannot
    be decrypted) gets an outcome saying so instead of a request, and so does one whose
    subscriber context has an error or whose transform fails on its event. `bodies` (event
    id -> body) may be shared by the calls for one claim: an event sent to several webhooks
    is encoded once."""
    bodies = {} if bodies is None else bodies
    subscribers = subscribers or {}
    jobs: list[tuple[Delivery, bytes, list[bytes], SubscriberContext | None]] = []
    unreadable = []
    for delivery in deliveries:
        webhook_keys = keys.get(delivery.webhook_id)
        if webhook_keys is None:
            unreadable.append(Outcome(delivery=delivery, started_at=now, error=UNREADABLE_SECRET))
            continue
        if not is_readable(delivery.webhook.headers):
            unreadable.append(Outcome(delivery=delivery, started_at=now, error=UNREADABLE_HEADERS))
            continue
        subscriber = subscribers.get(delivery.webhook_id)
        if subscriber is not None and subscriber.error:
            unreadable.append(Outcome(delivery=delivery, started_at=now, error=subscriber.error[:500]))
            continue
        if delivery.webhook.transform:  # a body per webhook; the others share one per event
            try:
                body = transformed_body(delivery.event, delivery.webhook.transform)
            except TransformError as exc:
                unreadable.append(Outcome(delivery=delivery, started_at=now, error=str(exc)[:500]))
                continue
        else:
            if delivery.event_id not in bodies:
                bodies[delivery.event_id] = event_body(delivery.event)
            body = bodies[delivery.event_id]
        jobs.append((delivery, body, webhook_keys, subscriber))
    if len(jobs) <= 1:
        return unreadable + [send_one(*job) for job in jobs]
    pool = _pool(max(app_settings.send_concurrency(), 1))
    # Each send runs in the caller's context (log fields, the current span), copied per job.
    contexts = [contextvars.copy_context() for _ in jobs]
    return unreadable + list(pool.map(lambda ctx, job: ctx.run(send_one, *job), contexts, jobs))
