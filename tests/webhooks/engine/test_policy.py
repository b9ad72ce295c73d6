"""The policy: pure functions, tested without a database or a network."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from webhooks.engine.policy import (
    FAILED,
    NOT_SENT_CRASHED,
    NOT_SENT_DISABLED,
    PENDING,
    SUCCEEDED,
    Exhausted,
    NextState,
    Outcome,
    announces_exhaustion,
    counter_change,
    exhaustion,
    next_state,
    plan_batch,
    skip_reason,
)
from webhooks.events import TEST_EVENT, WEBHOOK_DELIVERY_EXHAUSTED, WEBHOOK_DISABLED

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def delivery(pk=1, *, attempts=1, max_attempts=3, webhook_id="w", active=True, event_type="job.opened"):
    return SimpleNamespace(
        pk=pk,
        attempts=attempts,
        max_attempts=max_attempts,
        webhook_id=webhook_id,
        webhook=SimpleNamespace(is_active=active),
        event=SimpleNamespace(type=event_type),
    )


def outcome(d=None, *, success=False, gone=False, error="HTTP 500", at=0, retry_after=None, status=None):
    return Outcome(
        delivery=d or delivery(),
        started_at=NOW + timedelta(seconds=at),
        success=success,
        gone=gone,
        error="" if success else error,
        retry_after=retry_after,
        status=status,
    )


def fixed_retry(number, retry_after):
    return NOW + (retry_after or timedelta(seconds=number * 10))


def test_success_ends_the_delivery():
    assert next_state(outcome(success=True), attempts=1, max_attempts=3, retry_time=fixed_retry) == NextState(SUCCEEDED)


def test_a_failure_with_attempts_left_is_retried_at_the_schedule_or_retry_after():
    state = next_state(outcome(), attempts=1, max_attempts=3, retry_time=fixed_retry)
    assert state == NextState(PENDING, "HTTP 500", NOW + timedelta(seconds=10))
    later = next_state(outcome(retry_after=timedelta(minutes=2)), attempts=2, max_attempts=3, retry_time=fixed_retry)
    assert later.next_attempt_at == NOW + timedelta(minutes=2)


@pytest.mark.parametrize(("gone", "attempts"), [(True, 1), (False, 3)])
def test_410_or_the_last_attempt_fails_the_delivery(gone, attempts):
    state = next_state(outcome(gone=gone), attempts=attempts, max_attempts=3, retry_time=fixed_retry)
    assert state.state == FAILED and state.next_attempt_at is None


def test_errors_are_cut_to_500_characters():
    state = next_state(outcome(error="x" * 900), attempts=3, max_attempts=3, retry_time=fixed_retry)
    assert len(state.error) == 500


def test_skip_reasons():
    assert skip_reason(delivery()) is None
    assert skip_reason(delivery(active=False)) == NOT_SENT_DISABLED
    assert skip_reason(delivery(active=False, event_type=TEST_EVENT)) is None  # tests go to disabled webhooks
    assert skip_reason(delivery(attempts=5, max_attempts=3)) == NOT_SENT_CRASHED


def test_a_batch_groups_deliveries_by_next_state_and_shares_one_retry_time():
    outcomes = [outcome(delivery(pk)) for pk in range(1, 4)] + [outcome(delivery(9), success=True)]
    plan = plan_batch(outcomes, [(delivery(7), NOT_SENT_DISABLED)], NOW)
    states = {state.state: ids for state, ids in plan.groups.items()}
    assert states == {PENDING: [1, 2, 3], SUCCEEDED: [9], FAILED: [7]}
    assert len(plan.groups) == 3  # one retry time for the three failures, so one UPDATE
    assert plan.earliest_retry is not None and plan.earliest_retry > NOW
    assert [o.final for o in outcomes] == [False, False, False, True]


def test_counters_after_a_success_count_only_the_deliveries_that_ended_failed_since():
    first, second, third = delivery(1, attempts=3), delivery(2, attempts=3), delivery(3, attempts=1)
    outcomes = [outcome(first, at=0), outcome(second, success=True, at=1), outcome(third, at=2), outcome(first, at=3)]
    outcomes[3].final, outcomes[2].final = True, False  # one ended failed, one will be retried
    change = counter_change(outcomes)
    assert (change.successes, change.failures, change.consecutive_set, change.consecutive_add) == (1, 3, 1, 0)


def test_counters_without_a_success_add_the_deliveries_that_ended_failed():
    outcomes = [outcome(delivery(1)), outcome(delivery(2), gone=True)]
    outcomes[1].final = True
    change = counter_change(outcomes)
    assert (change.successes, change.failures, change.consecutive_set, change.consecutive_add) == (0, 2, None, 1)
    assert change.gone


def test_only_a_failure_after_the_last_allowed_attempt_is_exhausted():
    last = delivery(attempts=3, max_attempts=3)
    failed = NextState(FAILED, "HTTP 500")
    assert exhaustion(last, failed, status=500) == Exhausted(delivery=last, status=500, error="HTTP 500")
    assert exhaustion(delivery(attempts=1, max_attempts=3), failed) is None  # a 410 with retries left
    assert exhaustion(last, NextState(SUCCEEDED)) is None
    assert exhaustion(last, NextState(PENDING, "HTTP 500", NOW)) is None


@pytest.mark.parametrize("event_type", [WEBHOOK_DISABLED, WEBHOOK_DELIVERY_EXHAUSTED, TEST_EVENT, "webhook.anything"])
def test_the_exhaustion_of_a_webhook_event_is_not_announced(event_type):
    """Two failing webhooks subscribed to "*" would otherwise announce each other forever."""
    assert announces_exhaustion(event_type) is False
    assert exhaustion(delivery(attempts=3, max_attempts=3, event_type=event_type), NextState(FAILED, "x")) is None


@pytest.mark.parametrize("event_type", ["job.opened", "integration.unhealthy", "webhookish.created"])
def test_the_exhaustion_of_other_events_is_announced(event_type):
    assert announces_exhaustion(event_type) is True


def test_a_batch_lists_its_exhausted_deliveries_with_their_last_result():
    last, retried, gone_early, crashed, disabled = (
        delivery(1, attempts=3, max_attempts=3),
        delivery(2, attempts=1, max_attempts=3),
        delivery(3, attempts=1, max_attempts=3),
        delivery(4, attempts=5, max_attempts=3),
        delivery(5, attempts=3, max_attempts=3, active=False),
    )
    plan = plan_batch(
        [outcome(last, status=503, error="HTTP 503"), outcome(retried), outcome(gone_early, gone=True, status=410)],
        [(crashed, NOT_SENT_CRASHED), (disabled, NOT_SENT_DISABLED)],
        NOW,
    )
    assert set(plan.exhausted) == {1, 4}
    assert plan.exhausted[1] == Exhausted(delivery=last, status=503, error="HTTP 503")
    assert plan.exhausted[4] == Exhausted(delivery=crashed, status=None, error=NOT_SENT_CRASHED)


def test_test_events_count_as_attempts_but_never_in_consecutive_failures():
    real, test = delivery(1, attempts=3), delivery(2, max_attempts=1, event_type=TEST_EVENT)
    failed_test, gone_test = outcome(test, at=0), outcome(test, gone=True, at=1)
    failed_test.final = gone_test.final = True
    change = counter_change([failed_test, gone_test])
    assert (change.successes, change.failures, change.consecutive_set, change.consecutive_add) == (0, 2, None, 0)
    assert not change.gone and not change.may_disable  # a 410 to a test does not disable

    # A successful test does not reset the count of real deliveries that ended failed.
    ended = outcome(real, at=2)
    ended.final = True
    change = counter_change([outcome(test, success=True, at=0), ended])
    assert (change.successes, change.failures, change.consecutive_set, change.consecutive_add) == (1, 1, None, 1)
    assert change.may_disable
