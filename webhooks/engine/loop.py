"""The drain loop: claim a batch, send it, record it; repeat while a backlog remains.

It asks the store for work, the policy for next states and the sender for outcomes, and
tells `webhooks.scheduling` when to come back (a retry due soon, or the rest of a
backlog handed to a fresh task). Nothing imports this module but `webhooks.tasks` and the
services that send one delivery synchronously (test, replay).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import timedelta

from django import db
from django.utils import timezone

from common import metrics
from common.app_settings import metrics_enabled

from .. import app_settings, scheduling
from ..models import Delivery
from . import flow, sending, store, subscriber_auth
from .policy import BatchPlan, Outcome, plan_batch, skip_reason

logger = logging.getLogger(__name__)

#: seconds between claims while sends are in flight: after a claim that found work, and
#: after one that found none
BUSY_POLL = 0.005
IDLE_POLL = 0.02
#: the least time between two claims while the last one came back short (everything due
#: was taken): deliveries arriving one by one are claimed a few at a time, not one per claim
CLAIM_GAP = 0.005
#: a task holding the "drain pending" marker keeps claiming (every IDLE_POLL) this long after
#: its last claim that found work before it lets go: a stream of single triggers is drained
#: by one task, not by one task per trigger
LINGER = 0.05
#: how often, at most, a task holding the marker sets it again at a claim (it expires after
#: PENDING_TTL: a drain whose sends fill every slot claims nothing and lets it expire)
HOLD_REFRESH = 1.0
#: the longest a finished send waits for its claim's other sends before it is written
RECORD_AFTER = 0.05


def process(deliveries: list[Delivery]) -> list[Outcome]:
    """Send a claimed batch and record it. Returns the outcomes of what was sent."""
    if not deliveries:
        return []
    token, lease_expires_at = deliveries[0].lease_token, deliveries[0].lease_expires_at
    assert token is not None and lease_expires_at is not None, "process() takes claimed deliveries"
    now = timezone.now()
    sendable, skipped = _split(deliveries)
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


class _Recorder:
    """Finished sends waiting to be written, per claim (lease token). A claim's outcomes are
    written together once all its sends are done, or `RECORD_AFTER` after the first of them
    finished, whichever comes first: few writes when receivers are fast, and a receiver
    that hangs never holds its siblings' results back for longer than that."""

    def __init__(self) -> None:
        #: token -> the claim's subscriber contexts (auth, certificate) by webhook id: a 401
        #: drops the token that claim sent, never a newer one another claim fetched
        self.subscribers: dict = {}
        self.open: dict = {}  # token -> number of sends of the claim still in flight
        self.done: dict = {}  # token -> (first finished at, outcomes)
        #: an ordered webhook's head ended since the flag was cleared: its next event is due
        self.released_successor = False

    def started(self, token, count: int, subscribers: dict) -> None:
        self.open[token] = self.open.get(token, 0) + count
        if subscribers:
            self.subscribers[token] = subscribers

    def finished(self, outcome: Outcome) -> None:
        token = outcome.delivery.lease_token
        self.open[token] -= 1
        self.done.setdefault(token, (time.monotonic(), []))[1].append(outcome)

    def next_due(self) -> float | None:
        """Seconds until a partial claim must be written, or None."""
        if not self.done:
            return None
        return max(0.0, min(at for at, _ in self.done.values()) + RECORD_AFTER - time.monotonic())

    def flush(self, *, everything: bool = False) -> None:
        clock = time.monotonic()
        for token in list(self.done):
            at, outcomes = self.done[token]
            if everything or self.open[token] == 0 or clock - at >= RECORD_AFTER:
                del self.done[token]
                subscribers = self.subscribers.get(token, {})
                if self.open[token] == 0:
                    del self.open[token]
                    self.subscribers.pop(token, None)
                _record(token, outcomes, subscribers)
                if any(o.final and o.delivery.webhook.ordered for o in outcomes):
                    self.released_successor = True


def _record(token, outcomes: list[Outcome], subscribers: dict) -> None:
    _drop_rejected_tokens(outcomes, subscribers)
    recorded_at = timezone.now()
    plan = plan_batch(outcomes, [], recorded_at)
    expires = outcomes[0].delivery.lease_expires_at
    assert expires is not None, "claimed deliveries"
    recorded = store.record_batch(token, plan, now=recorded_at, lease_expires_at=expires)
    observe(plan, recorded)
    if plan.earliest_retry is not None:
        scheduling.wake_at(plan.earliest_retry)


def _send(delivery: Delivery, keys: dict, now, subscribers: dict, bodies: dict) -> Outcome:
    try:
        context = subscribers.get(delivery.webhook_id)
        if context is not None and context.needs_fetch:
            try:  # off the loop's thread: a token endpoint that hangs holds this send only
                context.resolve()
            finally:
                db.connection.close()  # this send thread's own connection
        return sending.send_batch([delivery], keys, now=now, subscribers=subscribers, bodies=bodies)[0]
    except Exception as exc:  # never let one send stop the loop
        return Outcome(delivery=delivery, started_at=now, error=f"Unexpected error ({type(exc).__name__}).")


def deliver_due(*, time_budget: float | None = None, holds_marker: bool = False) -> int:
    """Claim and send due deliveries while a backlog remains; returns how many were claimed.

    A pipeline, not batches (docs/QUEUE.md, "Flow"): up to `WEBHOOKS_SEND_CONCURRENCY`
    sends are in flight; results are written as soon as their claim's sends are done (or
    `RECORD_AFTER` after the first finished), and free slots are refilled by new claims, so
    a receiver that never answers holds its own slots only (the claim's slow lane caps how
    many). Retries take at most half of the slots: first attempts always find one. Claims
    follow the flow rules (webhooks/engine/flow.py); after a claim that came back short the
    next waits `CLAIM_GAP`.

    `holds_marker` (a delivery task): the "drain pending" marker (webhooks/scheduling.py)
    says this drain will claim again, so triggers meanwhile enqueue no task. It is held
    (set again at its claims, at most every `HOLD_REFRESH`) while the drain runs and for `LINGER` after its last
    claim that found work; to stop, the drain clears it and then claims once more, stopping
    only if that claim finds nothing. A trigger that found the marker set committed before
    it was cleared, so that last claim sees its delivery; one that found it clear enqueues
    a task of its own."""
    budget = app_settings.drain_seconds() if time_budget is None else time_budget
    slots = max(app_settings.send_concurrency(), 1)
    retry_slots = max(1, slots // 2)
    limit = app_settings.batch_size()
    pool = sending.pool(slots)
    started = time.monotonic()
    in_flight: dict[Future, Delivery] = {}
    recorder = _Recorder()
    sent = 0
    claims = 0
    backlog = False
    last_claim = last_work = held_at = started
    releasing = False  # the marker is cleared: the next claim that finds nothing ends the drain
    found_none = False  # the last claim found nothing
    rate_waited = False  # slept for a rate limit: the next claim is what the wait was for
    if holds_marker:
        _hold()
    try:
        while True:
            claimed_none = True
            now = time.monotonic()
            drained = (
                claims
                and not in_flight
                and (not backlog or (found_none and holds_marker))
                and not recorder.released_successor
                and not rate_waited
            )
            rate_waited = False
            if drained and releasing:
                return sent  # the claim after the marker was cleared found nothing
            if drained and holds_marker and (not sent or (found_none and backlog) or now - last_work >= LINGER):
                _let_go(0, True)
                releasing = True  # one more claim decides
            elif drained and not holds_marker:
                # Drained, and the last claim found all there was (like a batch that came back
                # short): what became due since (e.g. operational events) is a new trigger's.
                return sent
            elapsed = now - started
            # Past its budget a task keeps claiming only while its own sends are still in
            # flight, for at most one more request timeout: a send that hangs must not
            # leave this worker idle while it waits for it (bounded: budget + 2 timeouts).
            claiming = elapsed <= budget or (bool(in_flight) and elapsed <= budget + app_settings.request_timeout())
            gap = 0.0 if backlog or releasing or not claims else last_claim + CLAIM_GAP - now
            if drained and not releasing:
                gap = max(gap, last_claim + IDLE_POLL - now)  # lingering: claim now and then
            if claiming and len(in_flight) < slots and gap > 0 and not in_flight:
                time.sleep(gap)
                continue
            if claiming and len(in_flight) < slots and gap <= 0:
                claims += 1
                recorder.released_successor = False  # this claim takes the successor
                last_claim = time.monotonic()
                room = min(slots - len(in_flight), limit)
                retries = sum(1 for d in in_flight.values() if d.attempts > 1)
                claim = flow.claim_ready(limit=room, retry_limit=max(0, retry_slots - retries))
                sent += len(claim.deliveries)
                # Sticky while sends are in flight: a webhook at its cap (its leases ours)
                # has nothing claimable until they end; a claim with none in flight decides.
                backlog = claim.more or (backlog and bool(in_flight))
                claimed_none = found_none = not claim.deliveries
                if claim.deliveries:
                    last_work = last_claim
                    if releasing:  # work came in as the marker was cleared: hold it again
                        releasing = False
                        _hold()
                        held_at = last_claim
                if holds_marker and not releasing and last_claim - held_at >= HOLD_REFRESH:
                    _hold()
                    held_at = last_claim
                started_sends = _start(claim.deliveries, pool, recorder)
                for delivery, future in started_sends:
                    in_flight[future] = delivery
                if not in_flight and claim.rate_wait is not None:
                    if time.monotonic() - started + claim.rate_wait > budget:
                        scheduling.wake_at(timezone.now() + timedelta(seconds=claim.rate_wait))
                        return _let_go(sent, holds_marker and not releasing)
                    time.sleep(claim.rate_wait)
                    rate_waited = True
                    continue
            elif not claiming and not in_flight:
                if backlog or holds_marker:
                    # The rest of the backlog (or what came in since the last claim, under the
                    # marker this task held, or cleared without the claim that would decide)
                    # goes to a fresh task.
                    scheduling.hand_over()
                return sent
            if not in_flight:
                if not holds_marker and (claimed_none or not backlog):
                    return sent
                continue
            # Wait for a send to finish; come back sooner to claim what became due meanwhile.
            timeout = IDLE_POLL if claimed_none else BUSY_POLL
            if gap > 0:
                timeout = min(timeout, gap)
            partial = recorder.next_due()
            if partial is not None:
                timeout = min(timeout, partial)
            done, _ = wait(list(in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                recorder.finished(future.result())
                del in_flight[future]
            recorder.flush()
    except BaseException:
        if holds_marker:
            _let_go(0, True)  # the sweeper finds what this drain leaves behind
        raise
    finally:
        for future in list(in_flight):  # only after an error in this loop: let the sends end
            recorder.finished(future.result())
        recorder.flush(everything=True)


def _hold() -> None:
    try:
        scheduling.mark_drain_pending()
    except Exception:  # the broker is down: triggers enqueue (or fail to) as without a marker
        logger.warning("Could not set the drain-pending marker.", exc_info=True)


def _let_go(sent: int, held: bool) -> int:
    """Stop holding the marker: from now on a trigger enqueues a task. On the way out
    without a last claim (rate limits, an error), a trigger that found it set just before is
    claimed by the wake-up, a later trigger or the sweeper."""
    if held:
        try:
            scheduling.clear_drain_pending()
        except Exception:  # the broker is down: the marker expires by itself
            logger.warning("Could not clear the drain-pending marker.", exc_info=True)
    return sent


def _split(deliveries: list[Delivery]) -> tuple[list[Delivery], list[tuple[Delivery, str]]]:
    """The deliveries to send, and those not to (with the reason: `policy.skip_reason`)."""
    sendable, skipped = [], []
    for delivery in deliveries:
        reason = skip_reason(delivery)
        if reason is None:
            sendable.append(delivery)
        else:
            delivery.last_error = reason
            skipped.append((delivery, reason))
    return sendable, skipped


def _start(deliveries: list[Delivery], pool, recorder: _Recorder) -> list[tuple[Delivery, Future]]:
    """Start sending a claim's deliveries; those not to be sent are recorded at once (an
    ordered webhook's head among them releases its successor). Bearer tokens are read or
    fetched by the send threads (webhooks/engine/subscriber_auth.py, `resolve`)."""
    if not deliveries:
        return []
    now = timezone.now()
    sendable, skipped = _split(deliveries)
    if skipped:
        token, expires = deliveries[0].lease_token, deliveries[0].lease_expires_at
        assert token is not None and expires is not None, "claimed deliveries"
        plan = plan_batch([], skipped, now)
        recorded = store.record_batch(token, plan, now=now, lease_expires_at=expires)
        observe(plan, recorded)
        if any(d.webhook.ordered and d.pk in recorded for d, _ in skipped):
            recorder.released_successor = True  # a skipped head ends failed: the next is due
    if not sendable:
        return []
    keys = store.signing_keys({d.webhook_id for d in sendable}, now=now)
    claim_subscribers = subscriber_auth.prepare(sendable, fetch=False)
    recorder.started(sendable[0].lease_token, len(sendable), claim_subscribers)
    bodies: dict = {}  # the claim's event bodies, encoded once per event by the first send
    return [(delivery, pool.submit(_send, delivery, keys, now, claim_subscribers, bodies)) for delivery in sendable]
