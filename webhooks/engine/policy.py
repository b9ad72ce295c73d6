"""What happens after an attempt: pure functions, no database and no network.

`next_state` turns one attempt's `Outcome` into the delivery's next state; `plan_batch`
does it for a whole batch, grouping deliveries that move to the same state so the store
writes each group with one UPDATE; `counter_change` says how the webhook's counters move;
`skip_reason` says why a claimed delivery is not sent at all; `exhaustion` says whether a
delivery that ended failed is announced with a `webhook.delivery.exhausted` event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..events import TEST_EVENT, WEBHOOK_NAMESPACE
from ..retry import next_attempt_time

if TYPE_CHECKING:
    from ..models import Delivery

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"  # Delivery.State values
MAX_ERROR_LENGTH = 500
# A delivery whose sends kept killing their worker gets this many extra claims at most.
CRASH_ALLOWANCE = 1

NOT_SENT_DISABLED = "Not sent: the webhook is disabled."
NOT_SENT_CRASHED = "Not sent: its sends kept interrupting the worker."
UNREADABLE_HEADERS = (
    "Not sent: the webhook's custom headers cannot be decrypted with FERNET_KEYS. Put the old key back in "
    "FERNET_KEYS and run reencrypt_credentials, or enter the headers again."
)
UNREADABLE_SECRET = (
    "Not sent: the webhook's signing secret cannot be decrypted with FERNET_KEYS. Put the old key back in "
    "FERNET_KEYS and run reencrypt_credentials, or rotate the webhook's secret (rotate-secret)."
)
GONE_REASON = "The endpoint answered 410 Gone."


def threshold_reason(threshold: int) -> str:
    return f"Disabled after {threshold} consecutive failed deliveries."


@dataclass
class Outcome:
    """What one attempt did (or why it was not made)."""

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


@dataclass(frozen=True)
class NextState:
    state: str
    error: str = ""
    next_attempt_at: datetime | None = None


def skip_reason(delivery: Delivery) -> str | None:
    """Why a claimed delivery is not sent, or None to send it."""
    if delivery.attempts > delivery.max_attempts + CRASH_ALLOWANCE:
        return NOT_SENT_CRASHED
    if not delivery.webhook.is_active and delivery.event.type != TEST_EVENT:
        return NOT_SENT_DISABLED
    return None


RetryTime = Callable[[int, timedelta | None], datetime]


def next_state(outcome: Outcome, *, attempts: int, max_attempts: int, retry_time: RetryTime) -> NextState:
    """Success ends the delivery; 410 or the last allowed attempt fails it; else it is
    retried at `retry_time(retry_number, retry_after)`."""
    error = outcome.error[:MAX_ERROR_LENGTH]
    if outcome.success:
        return NextState(SUCCEEDED)
    if outcome.gone or attempts >= max_attempts:
        return NextState(FAILED, error)
    return NextState(PENDING, error, retry_time(attempts, outcome.retry_after))


@dataclass(frozen=True)
class Exhausted:
    """A delivery that used all its attempts and ended failed, with its last attempt's result."""

    delivery: Delivery
    status: int | None
    error: str


def announces_exhaustion(event_type: str) -> bool:
    """The exhaustion of a `webhook.*` event's delivery is not announced: two failing
    webhooks subscribed to "*" would otherwise announce each other's failures forever."""
    return not event_type.startswith(WEBHOOK_NAMESPACE)


def exhaustion(delivery: Delivery, state: NextState, *, status: int | None = None) -> Exhausted | None:
    """The announcement due for a delivery moving to `state`, if any: it ended failed
    after its last allowed attempt (a 410 with retries left is not exhausted). Asked for
    deliveries that were sent, and for those skipped after crashing their worker; one
    skipped because its webhook is disabled is not announced (`webhook.disabled` was)."""
    if state.state != FAILED or delivery.attempts < delivery.max_attempts:
        return None
    if not announces_exhaustion(delivery.event.type):
        return None
    return Exhausted(delivery=delivery, status=status, error=state.error)


@dataclass
class BatchPlan:
    """A batch's results: deliveries grouped by their next state, outcomes per webhook,
    and the exhausted deliveries to announce (by delivery id)."""

    groups: dict[NextState, list] = field(default_factory=lambda: defaultdict(list))
    per_webhook: dict = field(default_factory=lambda: defaultdict(list))
    outcomes: list[Outcome] = field(default_factory=list)
    exhausted: dict = field(default_factory=dict)
    earliest_retry: datetime | None = None

    def delivery_ids(self) -> list:
        return [pk for ids in self.groups.values() for pk in ids]


def plan_batch(outcomes: list[Outcome], skipped: list[tuple[Delivery, str]], now: datetime) -> BatchPlan:
    """Next states for a batch. Retries with the same (retry number, error, Retry-After)
    share one jittered time, so a batch usually needs one or two UPDATEs."""
    plan = BatchPlan(outcomes=list(outcomes))
    retry_times: dict[tuple, datetime] = {}

    def retry_time(retry_number: int, retry_after: timedelta | None, error: str) -> datetime:
        key = (retry_number, error, retry_after)
        if key not in retry_times:
            retry_times[key] = next_attempt_time(now=now, retry_number=retry_number, retry_after=retry_after)
        return retry_times[key]

    for delivery, reason in skipped:
        skipped_state = NextState(FAILED, reason[:MAX_ERROR_LENGTH])
        plan.groups[skipped_state].append(delivery.pk)
        if reason == NOT_SENT_CRASHED:  # its attempts are used up, by crashes
            _note_exhausted(plan, exhaustion(delivery, skipped_state))
    for outcome in outcomes:
        delivery = outcome.delivery
        error = outcome.error[:MAX_ERROR_LENGTH]

        def shared_retry_time(number: int, after: timedelta | None, error: str = error) -> datetime:
            return retry_time(number, after, error)

        state = next_state(
            outcome, attempts=delivery.attempts, max_attempts=delivery.max_attempts, retry_time=shared_retry_time
        )
        outcome.final = state.state != PENDING
        plan.groups[state].append(delivery.pk)
        plan.per_webhook[delivery.webhook_id].append(outcome)
        _note_exhausted(plan, exhaustion(delivery, state, status=outcome.status))
    if retry_times:
        plan.earliest_retry = min(retry_times.values())
    return plan


def _note_exhausted(plan: BatchPlan, exhausted: Exhausted | None) -> None:
    if exhausted is not None:
        plan.exhausted[exhausted.delivery.pk] = exhausted


@dataclass(frozen=True)
class CounterChange:
    """How one batch moves a webhook's counters.

    `consecutive_failures` counts deliveries that ended failed (no retry left, or 410)
    since the last successful attempt; a failed attempt that will be retried does not
    count, so a short outage does not disable a webhook. After a success in the batch it
    is *set* to `consecutive_set`; otherwise `consecutive_add` is added to it.

    `webhook.test` attempts count in `successes`/`failures` (they are attempts, logged like
    any other) but never in `consecutive_failures`, and never disable the webhook (not even
    a 410): an operator testing an endpoint, e.g. a disabled one, must not change its state.
    """

    successes: int
    failures: int
    consecutive_set: int | None
    consecutive_add: int
    gone: bool

    @property
    def may_disable(self) -> bool:
        """Whether the batch can have brought the webhook to its disable threshold (or 410)."""
        return self.gone or self.consecutive_add > 0 or bool(self.consecutive_set)


def is_test(outcome: Outcome) -> bool:
    return outcome.delivery.event.type == TEST_EVENT


def counter_change(outcomes: list[Outcome]) -> CounterChange:
    ordered = sorted(outcomes, key=lambda o: o.started_at)
    successes = sum(o.success for o in ordered)
    failures = len(ordered) - successes
    counted = [o for o in ordered if not is_test(o)]
    gone = any(o.gone for o in counted)
    if any(o.success for o in counted):
        last_success = max(i for i, o in enumerate(counted) if o.success)
        after = counted[last_success + 1 :]
        return CounterChange(successes, failures, sum(o.final for o in after), 0, gone)
    return CounterChange(successes, failures, None, sum(o.final for o in counted), gone)
