"""Sending: one signed POST per delivery, a batch concurrently over one pooled session.

No database access: the loop passes each webhook's signing keys in (the store reads
them), and gets back an `Outcome` per delivery. Nothing raised by one send can break the
batch: every failure becomes that delivery's outcome.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from requests_hardened.ip_filter import InvalidIPAddress

from common.fields import is_readable
from common.http import read_capped, request_deadline
from common.redaction import mask_sensitive, redact, sensitive_values

from .. import app_settings
from ..http import get_session
from ..models import Delivery, Event
from ..retry import parse_retry_after
from ..signing import sign
from .policy import UNREADABLE_HEADERS, UNREADABLE_SECRET, Outcome

logger = logging.getLogger(__name__)

#: decoded bytes of a receiver's answer read (then the connection is dropped); the excerpt
#: stored is shorter still (`WEBHOOKS_RESPONSE_EXCERPT_BYTES`)
MAX_BODY_READ = 64 * 1024

_executor: ThreadPoolExecutor | None = None
_executor_size = 0


def event_body(event: Event) -> bytes:
    """The request body; the same bytes on every attempt of the event."""
    return json.dumps(
        {"type": event.type, "timestamp": event.created_at.isoformat().replace("+00:00", "Z"), "data": event.payload},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


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


def send_one(delivery: Delivery, body: bytes, keys: list[bytes]) -> Outcome:
    webhook = delivery.webhook
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(msg_id=delivery.message_id, timestamp=timestamp, body=body, keys=keys),
    }
    custom = webhook.headers or {}
    outcome = Outcome(delivery=delivery, started_at=timezone.now(), request_headers=loggable_headers(headers, custom))
    timeout = app_settings.request_timeout()
    started = time.perf_counter()
    try:
        # The timeout bounds each read; the deadline the whole request, body included.
        with request_deadline(timeout):
            response = get_session().post(
                webhook.url,
                data=body,
                headers={**custom, **headers},
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
            # A longer answer is cut, not an error: delivery success is the status code.
            raw = read_capped(response, MAX_BODY_READ, truncate=True)
        _fill_from_response(outcome, response, raw, custom)
    except requests.RequestException as exc:
        outcome.error = error_text(exc, timeout)
    except Exception as exc:  # never let one delivery break the batch
        logger.exception("Unexpected error delivering %s", delivery.message_id)
        outcome.error = f"Unexpected error ({type(exc).__name__})."
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    return outcome


def _fill_from_response(outcome: Outcome, response: requests.Response, raw: bytes, custom: dict[str, str]) -> None:
    outcome.status = response.status_code
    # PostgreSQL text cannot hold NUL: one receiver's odd answer must not fail the batch.
    # A receiver may echo the request (debug pages, echo servers): keep its secrets out.
    text = redact(raw.decode("utf-8", "replace").replace("\x00", "\ufffd"), sensitive_values(custom))
    outcome.body_excerpt = text.encode()[: app_settings.response_excerpt_bytes()].decode("utf-8", "ignore")
    outcome.success = 200 <= response.status_code < 300
    outcome.gone = response.status_code == 410
    if not outcome.success:
        outcome.error = f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            outcome.error += " (redirects are not followed)"
        outcome.retry_after = parse_retry_after(response.headers.get("Retry-After"))


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
    deliveries: list[Delivery], keys: dict[uuid.UUID, list[bytes] | None], *, now: datetime
) -> list[Outcome]:
    """Send each delivery (concurrently); a webhook whose keys are None (its secret cannot
    be decrypted) gets an outcome saying so instead of a request."""
    bodies: dict[uuid.UUID, bytes] = {}
    jobs, unreadable = [], []
    for delivery in deliveries:
        webhook_keys = keys.get(delivery.webhook_id)
        if webhook_keys is None:
            unreadable.append(Outcome(delivery=delivery, started_at=now, error=UNREADABLE_SECRET))
            continue
        if not is_readable(delivery.webhook.headers):
            unreadable.append(Outcome(delivery=delivery, started_at=now, error=UNREADABLE_HEADERS))
            continue
        if delivery.event_id not in bodies:
            bodies[delivery.event_id] = event_body(delivery.event)
        jobs.append((delivery, bodies[delivery.event_id], webhook_keys))
    if len(jobs) <= 1:
        return unreadable + [send_one(*job) for job in jobs]
    pool = _pool(max(app_settings.send_concurrency(), 1))
    return unreadable + list(pool.map(lambda job: send_one(*job), jobs))
