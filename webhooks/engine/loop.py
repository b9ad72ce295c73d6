"""The drain loop: claim a batch, send it, record it; repeat while a backlog remains.

It asks the store for work, the policy for next states and the sender for outcomes, and
tells `webhooks.scheduling` when to come back (a retry due soon, or the rest of a
backlog handed to a fresh task). Nothing imports this module but `webhooks.tasks` and the
services that send one delivery synchronously (test, replay).
"""

from __future__ import annotations

import time

from django.utils import timezone

from common import metrics
from common.app_settings import metrics_enabled

from .. import app_settings, scheduling
from ..models import Delivery
from . import sending, store, subscriber_auth
from .policy import BatchPlan, Outcome, plan_batch, skip_reason


def process(deliveries: list[Delivery]) -> list[Outcome]:
    """Send a claimed batch and record it. Returns the outcomes of what was sent."""
    if not deliveries:
        return []
    token, lease_expires_at = deliveries[0].lease_token, deliveries[0].lease_expires_at
    assert token is not None and lease_expires_at is not None, "process() takes claimed deliveries"
    now = timezone.now()
    sendable, skipped = [], []
    for delivery in deliveries:
        reason = skip_reason(delivery)
        if reason is None:
            sendable.append(delivery)
        else:
            delivery.last_error = reason
            skipped.append((delivery, reason))
    outcomes: list[Outcome] = []
    if sendable:
        keys = store.signing_keys({d.webhook_id for d in sendable}, now=now)
        subscribers = subscriber_auth.prepare(sendable)
        outcomes = sending.send_batch(sendable, keys, now=now, subscribers=subscribers)
        _drop_rejected_tokens(outcomes, subscribers)
    recorded_at = timezone.now()
    plan = plan_batch(outcomes, skipped, recorded_at)
    recorded = store.record_batch(token, plan, now=recorded_at, lease_expires_at=lease_expires_at)
    observe(plan, recorded)
    if plan.earliest_retry is not None:
        scheduling.wake_at(plan.earliest_retry)
    return outcomes


def observe(plan: BatchPlan, recorded: set) -> None:
    """Count the attempts the store recorded (a lease taken over records none): each by
    what it led to; deliveries claimed but not sent are `failed` with no status."""
    if not recorded or not metrics_enabled():
        return
    attempts: list[metrics.Attempt] = []
    sent = set()
    for outcome in plan.outcomes:
        delivery = outcome.delivery
        sent.add(delivery.pk)
        if delivery.pk not in recorded:
            continue
        seconds = outcome.duration_ms / 1000
        latency = None
        if outcome.success:  # the 2xx came at the end of this attempt
            latency = (outcome.started_at - delivery.event.created_at).total_seconds() + seconds
        state = "succeeded" if outcome.success else "failed" if outcome.final else "retrying"
        # no request headers: no request was made (a secret that cannot be decrypted)
        attempts.append((state, outcome.status, seconds if outcome.request_headers else None, latency))
    attempts.extend(("failed", None, None, None) for pk in plan.delivery_ids() if pk in recorded and pk not in sent)
    metrics.record_deliveries(attempts)


def _drop_rejected_tokens(outcomes: list[Outcome], subscribers: dict) -> None:
    """A 401 to a bearer token: the next attempt fetches a new one."""
    for outcome in outcomes:
        context = subscribers.get(outcome.delivery.webhook_id)
        if outcome.status == 401 and context is not None and context.token_fetched_at is not None:
            subscriber_auth.token_rejected(outcome.delivery.webhook_id, context.token_fetched_at)


def deliver_due(*, time_budget: float | None = None) -> int:
    """Claim and send due deliveries in batches while a backlog remains; returns how many."""
    budget = app_settings.drain_seconds() if time_budget is None else time_budget
    limit = app_settings.batch_size()
    started = time.monotonic()
    sent = 0
    while True:
        batch = store.claim_due(limit=limit)
        process(batch)
        sent += len(batch)
        if len(batch) < limit:
            return sent
        if time.monotonic() - started > budget:
            scheduling.hand_over()  # the rest of the backlog goes to a fresh task
            return sent
