"""The delivery engine: claim due deliveries, send them concurrently, record the results.

The database owns every delivery's state (QUEUE_NOTES.md): a task only says "there may be
work". A worker claims a batch atomically (`SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite's IMMEDIATE transactions serialize claims) by giving it a lease token
that outlives the batch's sends, sends the batch concurrently over one pooled session,
then writes all logs, delivery states and webhook counters in a few bulk statements,
guarded by the lease token so a worker whose lease was taken over cannot overwrite newer
state. A worker that dies mid-send leaves its lease to expire; the delivery is then
claimed again and resent with the same `webhook-id`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from cryptography.fernet import InvalidToken
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from requests_hardened.ip_filter import InvalidIPAddress

from common.http import request_deadline

from . import app_settings, wakeup
from .events import TEST_EVENT
from .http import get_session
from .models import Delivery, Event, Webhook, WebhookLog
from .retry import next_attempt_time, parse_retry_after
from .signing import secret_key_bytes, sign

logger = logging.getLogger(__name__)

SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|cookie|password|session|credential", re.IGNORECASE)
MAX_BODY_READ = 64 * 1024
# A delivery whose sends kept killing their worker gets this many extra claims at most.
CRASH_ALLOWANCE = 1

_executor: ThreadPoolExecutor | None = None
_executor_size = 0


@dataclass
class Outcome:
    delivery: Delivery
    started_at: datetime
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    body_excerpt: str = ""
    duration_ms: float = 0.0
    error: str = ""
    success: bool = False
    retry_after: timedelta | None = None
    gone: bool = False
    final: bool = False  # the delivery ends with this attempt (success, or no retry left)


def event_body(event: Event) -> bytes:
    """The request body; the same bytes on every attempt of the event."""
    return json.dumps(
        {"type": event.type, "timestamp": event.created_at.isoformat().replace("+00:00", "Z"), "data": event.payload},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


SECRET_FIELDS = ("secret", "previous_secret", "previous_secret_expires_at")
UNREADABLE_SECRET = (
    "Not sent: the webhook's signing secret cannot be decrypted with FERNET_KEYS. Put the old key back in "
    "FERNET_KEYS and run reencrypt_credentials, or rotate the webhook's secret (rotate-secret)."
)


def _keys_of(secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime) -> list[bytes]:
    keys = [secret_key_bytes(secret)]
    if previous and previous_expires_at and previous_expires_at > now:
        keys.append(secret_key_bytes(previous))
    return keys


def signing_keys(webhook_ids: set[uuid.UUID], *, now: datetime) -> dict[uuid.UUID, list[bytes] | None]:
    """Each webhook's signing keys in one query; None for a secret that cannot be decrypted
    (e.g. a Fernet key dropped before `reencrypt_credentials`), which then fails only its
    own deliveries instead of every batch it is part of."""
    rows = Webhook.objects.filter(pk__in=webhook_ids).values_list("pk", *SECRET_FIELDS)
    try:
        return {pk: _keys_of(*secrets, now) for pk, *secrets in rows}
    except InvalidToken:
        keys: dict[uuid.UUID, list[bytes] | None] = {}
        for webhook_id in webhook_ids:
            try:
                keys.update({pk: _keys_of(*secrets, now) for pk, *secrets in rows.filter(pk=webhook_id)})
            except InvalidToken:
                logger.error("The signing secret of webhook %s cannot be decrypted with FERNET_KEYS.", webhook_id)
                keys[webhook_id] = None
        return keys


def sensitive_values(custom: dict[str, str]) -> list[str]:
    """The values of a webhook's sensitive headers (auth, token, key...), longest first."""
    values = {value for name, value in custom.items() if SENSITIVE_HEADER.search(name) and len(value) >= 4}
    return sorted(values, key=len, reverse=True)


def redact_excerpt(text: str, secrets: list[str]) -> str:
    """A receiver may echo the request (debug pages, echo servers): keep its secrets out of the log."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def loggable_headers(headers: dict[str, str], custom: dict[str, str]) -> dict[str, str]:
    logged = {name: ("[redacted]" if SENSITIVE_HEADER.search(name) else value) for name, value in custom.items()}
    logged.update(headers)
    return logged


# --- claiming ---------------------------------------------------------------------------


def claim_due(*, limit: int, delivery_ids: list | None = None) -> list[Delivery]:
    """Atomically lease up to `limit` due deliveries (or exactly `delivery_ids`)."""
    now = timezone.now()
    with transaction.atomic():
        # Due-ness by the database's clock, the one the triggering web process wrote with
        # on PostgreSQL: a worker whose clock lags must not find a fresh delivery "not due".
        queryset = Delivery.objects.filter(state=Delivery.State.PENDING).filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())
        )
        if delivery_ids is not None:
            queryset = queryset.filter(pk__in=delivery_ids)
        else:
            queryset = queryset.filter(next_attempt_at__lte=Now()).order_by("next_attempt_at")
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True, of=("self",))
        # Secrets are loaded per batch by `signing_keys`, so one that cannot be decrypted
        # does not make the claim itself fail.
        secrets = [f"webhook__{name}" for name in SECRET_FIELDS]
        deliveries = list(queryset.select_related("event", "webhook").defer(*secrets)[:limit])
        if not deliveries:
            return []
        token = uuid.uuid4()
        expires = now + timedelta(seconds=app_settings.lease_seconds())
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
            lease_token=token, lease_expires_at=expires, attempts=F("attempts") + 1
        )
    for delivery in deliveries:
        delivery.lease_token = token
        delivery.lease_expires_at = expires
        delivery.attempts += 1
    return deliveries


# --- sending ----------------------------------------------------------------------------


def _pool(size: int) -> ThreadPoolExecutor:
    global _executor, _executor_size
    if _executor is None or _executor_size != size:
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook-send")
        _executor_size = size
    return _executor


def _error_text(exc: Exception, timeout: float) -> str:
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
    now = timezone.now()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(msg_id=delivery.message_id, timestamp=timestamp, body=body, keys=keys),
    }
    custom = webhook.headers or {}
    outcome = Outcome(delivery=delivery, started_at=now, request_headers=loggable_headers(headers, custom))
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
            try:
                chunks, size = [], 0
                for chunk in response.iter_content(8192):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_BODY_READ:
                        break
                raw = b"".join(chunks)
            finally:
                response.close()
        outcome.status = response.status_code
        # PostgreSQL text cannot hold NUL: one receiver's odd answer must not fail the batch.
        text = redact_excerpt(raw.decode("utf-8", "replace").replace("\x00", "\ufffd"), sensitive_values(custom))
        outcome.body_excerpt = text.encode()[: app_settings.response_excerpt_bytes()].decode("utf-8", "ignore")
        outcome.success = 200 <= response.status_code < 300
        outcome.gone = response.status_code == 410
        if not outcome.success:
            outcome.error = f"HTTP {response.status_code}"
            if 300 <= response.status_code < 400:
                outcome.error += " (redirects are not followed)"
            outcome.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    except requests.RequestException as exc:
        outcome.error = _error_text(exc, timeout)
    except Exception as exc:  # never let one delivery break the batch
        logger.exception("Unexpected error delivering %s", delivery.message_id)
        outcome.error = f"Unexpected error ({type(exc).__name__})."
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    return outcome


def send_batch(deliveries: list[Delivery]) -> list[Outcome]:
    now = timezone.now()
    bodies: dict[uuid.UUID, bytes] = {}
    keys = signing_keys({d.webhook_id for d in deliveries}, now=now)
    jobs, unreadable = [], []
    for delivery in deliveries:
        if keys.get(delivery.webhook_id) is None:
            unreadable.append(Outcome(delivery=delivery, started_at=now, error=UNREADABLE_SECRET))
            continue
        if delivery.event_id not in bodies:
            bodies[delivery.event_id] = event_body(delivery.event)
        jobs.append((delivery, bodies[delivery.event_id], keys[delivery.webhook_id]))
    if len(jobs) <= 1:
        return unreadable + [send_one(*job) for job in jobs]
    pool = _pool(max(app_settings.send_concurrency(), 1))
    return unreadable + list(pool.map(lambda job: send_one(*job), jobs))


# --- recording --------------------------------------------------------------------------


def _mark_unsent(deliveries: list[Delivery], reason: str) -> None:
    for delivery in deliveries:
        delivery.last_error = reason


@dataclass
class _Plan:
    """What recording a batch writes, before it is narrowed to the rows still owned."""

    logs: list[WebhookLog] = field(default_factory=list)
    groups: dict[tuple, list[uuid.UUID]] = field(default_factory=lambda: defaultdict(list))
    per_webhook: dict[uuid.UUID, list[Outcome]] = field(default_factory=lambda: defaultdict(list))
    retry_times: dict[tuple, datetime] = field(default_factory=dict)

    def delivery_ids(self) -> list[uuid.UUID]:
        return [pk for ids in self.groups.values() for pk in ids]


def _plan(outcomes: list[Outcome], unsent: list[Delivery], now: datetime) -> _Plan:
    plan = _Plan()
    for delivery in unsent:
        plan.groups[(Delivery.State.FAILED, delivery.last_error, None)].append(delivery.pk)
    for outcome in outcomes:
        delivery = outcome.delivery
        error = outcome.error[:500]
        plan.logs.append(
            WebhookLog(
                organization_id=delivery.organization_id,
                webhook_id=delivery.webhook_id,
                delivery_id=delivery.pk,
                event_type=delivery.event.type,
                message_id=delivery.message_id,
                attempt=delivery.attempts,
                request_url=delivery.webhook.url,
                request_headers=outcome.request_headers,
                response_status=outcome.status,
                response_body=outcome.body_excerpt,
                duration_ms=round(outcome.duration_ms, 3),
                error=error,
                success=outcome.success,
                created_at=outcome.started_at,
            )
        )
        plan.per_webhook[delivery.webhook_id].append(outcome)
        if outcome.success:
            outcome.final = True
            plan.groups[(Delivery.State.SUCCEEDED, "", None)].append(delivery.pk)
        elif outcome.gone or delivery.attempts >= delivery.max_attempts:
            outcome.final = True
            plan.groups[(Delivery.State.FAILED, error, None)].append(delivery.pk)
        else:
            # One jittered time per (retry number, error, Retry-After) in the batch.
            key = (delivery.attempts, error, outcome.retry_after)
            if key not in plan.retry_times:
                plan.retry_times[key] = next_attempt_time(
                    now=now, retry_number=delivery.attempts, retry_after=outcome.retry_after
                )
            plan.groups[(Delivery.State.PENDING, error, plan.retry_times[key])].append(delivery.pk)
    return plan


def _write(token: uuid.UUID, plan: _Plan, now: datetime) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Results need not wait for the WAL flush: if the server crashed before flushing
            # them, the delivery keeps its (durable) lease and is resent with the same
            # webhook-id once it expires; at-least-once holds. Claims stay synchronous:
            # losing one could let two workers send at once.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # Only rows this worker still owns: a lease taken over by another worker, or a
        # delivery deleted with its webhook meanwhile, gets no log and moves no counter.
        owned = set(
            Delivery.objects.select_for_update()
            .filter(pk__in=plan.delivery_ids(), lease_token=token)
            .values_list("pk", flat=True)
        )
        logs = [log for log in plan.logs if log.delivery_id in owned]
        if logs:
            WebhookLog.objects.bulk_create(logs)
        for (state, error, next_attempt_at), ids in plan.groups.items():
            mine = [pk for pk in ids if pk in owned]
            if mine:
                Delivery.objects.filter(pk__in=mine, lease_token=token).update(
                    state=state,
                    next_attempt_at=next_attempt_at,
                    lease_token=None,
                    lease_expires_at=None,
                    last_error=error,
                    finished_at=None if state == Delivery.State.PENDING else now,
                )
        # Webhook rows are locked in one global order, so that concurrent batches touching
        # the same webhooks cannot deadlock.
        for webhook_id in sorted(plan.per_webhook):
            outcomes = [o for o in plan.per_webhook[webhook_id] if o.delivery.pk in owned]
            if outcomes:
                _update_webhook_counters(webhook_id, outcomes, now)


def _write_while_leased(token: uuid.UUID, plan: _Plan, now: datetime, lease_expires_at: datetime) -> None:
    """Keep trying (reconnecting) while the lease holds: a database restart in the middle
    of a batch must not turn into a resend of everything the batch already delivered."""
    pause = 0.1
    while True:
        try:
            _write(token, plan, now)
            return
        except (OperationalError, InterfaceError):
            if timezone.now() + timedelta(seconds=pause + 1) >= lease_expires_at:
                raise
            logger.warning("Recording a delivery batch failed; trying again.", exc_info=True)
            connection.close()
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def record_outcomes(
    token: uuid.UUID, outcomes: list[Outcome], unsent: list[Delivery], *, lease_expires_at: datetime
) -> None:
    """Write logs, delivery states and webhook counters in a few bulk statements.

    Deliveries with the same new state are updated by one UPDATE each (a batch usually has
    one or two such groups), guarded by the lease token. If the batch cannot be written
    for a reason other than the connection, each delivery is written on its own, so that
    one bad row cannot make the whole batch be sent again.
    """
    now = timezone.now()
    plan = _plan(outcomes, unsent, now)
    try:
        _write_while_leased(token, plan, now, lease_expires_at)
    except (IntegrityError, DataError):
        logger.exception("Recording a delivery batch failed; recording its deliveries one by one.")
        for outcome in outcomes:
            _write_alone(token, _plan([outcome], [], now), now, lease_expires_at)
        for delivery in unsent:
            _write_alone(token, _plan([], [delivery], now), now, lease_expires_at)
    if plan.retry_times:
        wakeup.schedule(min(plan.retry_times.values()))


def _write_alone(token: uuid.UUID, plan: _Plan, now: datetime, lease_expires_at: datetime) -> None:
    try:
        _write_while_leased(token, plan, now, lease_expires_at)
    except (IntegrityError, DataError):
        # Left leased: it is claimed again (and resent, same webhook-id) when the lease expires.
        logger.exception("Could not record delivery %s.", plan.delivery_ids())


def _update_webhook_counters(webhook_id: uuid.UUID, outcomes: list[Outcome], now: datetime) -> None:
    """Attempt counters, and `consecutive_failures`: deliveries that ended failed (no
    retry left, or 410) since the last successful attempt. A failed attempt that will be
    retried does not count, so a short outage does not disable a webhook."""
    outcomes = sorted(outcomes, key=lambda o: o.started_at)
    successes = sum(o.success for o in outcomes)
    failures = len(outcomes) - successes
    updates: dict = {
        "success_count": F("success_count") + successes,
        "failure_count": F("failure_count") + failures,
        "last_triggered_at": now,
    }
    if successes:
        last_success = max(i for i, o in enumerate(outcomes) if o.success)
        updates["consecutive_failures"] = sum(o.final and not o.success for o in outcomes[last_success + 1 :])
        updates["last_success_at"] = now
    else:
        final_failures = sum(o.final for o in outcomes)
        if final_failures:
            updates["consecutive_failures"] = F("consecutive_failures") + final_failures
    if failures:
        updates["last_failure_at"] = now
    Webhook.objects.filter(pk=webhook_id).update(**updates)
    if not failures:
        return
    if any(o.gone for o in outcomes):
        Webhook.objects.filter(pk=webhook_id, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason="The endpoint answered 410 Gone."
        )
        return
    threshold = app_settings.disable_after_failures()
    Webhook.objects.filter(pk=webhook_id, is_active=True, consecutive_failures__gte=threshold).update(
        is_active=False,
        disabled_at=now,
        disabled_reason=f"Disabled after {threshold} consecutive failed deliveries.",
    )


def process(deliveries: list[Delivery]) -> list[Outcome]:
    """Send a claimed batch and record it. Returns the outcomes of what was sent."""
    if not deliveries:
        return []
    token = deliveries[0].lease_token
    sendable, inactive, crashed = [], [], []
    for delivery in deliveries:
        if delivery.attempts > delivery.max_attempts + CRASH_ALLOWANCE:
            crashed.append(delivery)
        elif not delivery.webhook.is_active and delivery.event.type != TEST_EVENT:
            inactive.append(delivery)
        else:
            sendable.append(delivery)
    _mark_unsent(inactive, "Not sent: the webhook is disabled.")
    _mark_unsent(crashed, "Not sent: its sends kept interrupting the worker.")
    outcomes = send_batch(sendable) if sendable else []
    record_outcomes(token, outcomes, inactive + crashed, lease_expires_at=deliveries[0].lease_expires_at)
    return outcomes


def deliver_due(*, time_budget: float | None = None) -> int:
    """Claim and send due deliveries in batches while a backlog remains; returns how many."""
    budget = app_settings.drain_seconds() if time_budget is None else time_budget
    limit = app_settings.batch_size()
    started = time.monotonic()
    sent = 0
    while True:
        batch = claim_due(limit=limit)
        process(batch)
        sent += len(batch)
        if len(batch) < limit:
            return sent
        if time.monotonic() - started > budget:
            from .dispatch import enqueue_drains

            enqueue_drains(1)  # hand the rest of the backlog to a fresh task
            return sent


def due_count() -> int:
    return (
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=Now())
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now()))
        .count()
    )
