"""The drain loop: claim a batch, send it, record it; repeat while a backlog remains.

It asks the store for work, the policy for next states and the sender for outcomes, and
tells `webhooks.scheduling` when to come back (a retry due soon, or the rest of a
backlog handed to a fresh task). Nothing imports this module but `webhooks.tasks` and the
services that send one delivery synchronously (test, replay).
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import timedelta

from django.utils import timezone

from .. import app_settings, scheduling
from ..models import Delivery
from . import flow, sending, store
from .policy import Outcome, plan_batch, skip_reason

#: seconds between claims while sends are in flight: after a claim that found work, and
#: after one that found none
BUSY_POLL = 0.005
IDLE_POLL = 0.02


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
        outcomes = sending.send_batch(sendable, keys, now=now)
    recorded_at = timezone.now()
    plan = plan_batch(outcomes, skipped, recorded_at)
    store.record_batch(token, plan, now=recorded_at, lease_expires_at=lease_expires_at)
    if plan.earliest_retry is not None:
        scheduling.wake_at(plan.earliest_retry)
    return outcomes


def _record(done: list[Outcome]) -> None:
    """Record finished sends now, one write per lease (claim) they came from."""
    by_token: dict = {}
    for outcome in done:
        by_token.setdefault(outcome.delivery.lease_token, []).append(outcome)
    recorded_at = timezone.now()
    for token, outcomes in by_token.items():
        plan = plan_batch(outcomes, [], recorded_at)
        store.record_batch(token, plan, now=recorded_at, lease_expires_at=outcomes[0].delivery.lease_expires_at)
        if plan.earliest_retry is not None:
            scheduling.wake_at(plan.earliest_retry)


def _send(delivery: Delivery, keys: dict, now) -> Outcome:
    try:
        return sending.send_batch([delivery], keys, now=now)[0]
    except Exception as exc:  # never let one send stop the loop
        return Outcome(delivery=delivery, started_at=now, error=f"Unexpected error ({type(exc).__name__}).")


def deliver_due(*, time_budget: float | None = None) -> int:
    """Claim and send due deliveries while a backlog remains; returns how many were claimed.

    A pipeline, not batches (docs/QUEUE.md, "Flow"): up to `WEBHOOKS_SEND_CONCURRENCY`
    sends are in flight; each is recorded as soon as it finishes, and its slot is refilled
    by a new claim, so a receiver that never answers holds its own slots only (the claim's
    slow lane caps how many). Retries take at most half of the slots: first attempts
    always find one. Claims follow the flow rules (webhooks/engine/flow.py)."""
    budget = app_settings.drain_seconds() if time_budget is None else time_budget
    slots = max(app_settings.send_concurrency(), 1)
    retry_slots = max(1, slots // 2)
    limit = app_settings.batch_size()
    pool = sending.pool(slots)
    started = time.monotonic()
    in_flight: dict[Future, Delivery] = {}
    sent = 0
    backlog = False
    while True:
        claimed_none = True
        if time.monotonic() - started <= budget and len(in_flight) < slots:
            room = min(slots - len(in_flight), limit)
            retries = sum(1 for d in in_flight.values() if d.attempts > 1)
            claim = flow.claim_ready(limit=room, retry_limit=max(0, retry_slots - retries))
            sent += len(claim.deliveries)
            backlog = len(claim.deliveries) >= room
            claimed_none = not claim.deliveries
            for delivery, future in _start(claim.deliveries, pool):
                in_flight[future] = delivery
            if not in_flight and claim.rate_wait is not None:
                if time.monotonic() - started + claim.rate_wait > budget:
                    scheduling.wake_at(timezone.now() + timedelta(seconds=claim.rate_wait))
                    return sent
                time.sleep(claim.rate_wait)
                continue
        elif time.monotonic() - started > budget and not in_flight:
            if backlog:
                scheduling.hand_over()  # the rest of the backlog goes to a fresh task
            return sent
        if not in_flight:
            if claimed_none or not backlog:
                return sent
            continue
        # Wait for a send to finish; come back sooner to claim what became due meanwhile.
        done, _ = wait(list(in_flight), timeout=IDLE_POLL if claimed_none else BUSY_POLL, return_when=FIRST_COMPLETED)
        if done:
            _record([future.result() for future in done])
            for future in done:
                del in_flight[future]


def _start(deliveries: list[Delivery], pool) -> list[tuple[Delivery, Future]]:
    """Start sending a claim's deliveries; those not to be sent are recorded at once."""
    if not deliveries:
        return []
    now = timezone.now()
    sendable, skipped = [], []
    for delivery in deliveries:
        reason = skip_reason(delivery)
        if reason is None:
            sendable.append(delivery)
        else:
            delivery.last_error = reason
            skipped.append((delivery, reason))
    if skipped:
        token, expires = deliveries[0].lease_token, deliveries[0].lease_expires_at
        assert token is not None and expires is not None, "claimed deliveries"
        store.record_batch(token, plan_batch([], skipped, now), now=now, lease_expires_at=expires)
    if not sendable:
        return []
    keys = store.signing_keys({d.webhook_id for d in sendable}, now=now)
    return [(delivery, pool.submit(_send, delivery, keys, now)) for delivery in sendable]
