"""Retention against concurrent writers (webhooks/services/retention.py): a replay that
re-arms a delivery while a prune is deciding to delete it. Real PostgreSQL, two
connections: the replay runs in a thread (its own connection) at the exact moment the
prune's connection is about to send a given statement."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from tests.webhooks.test_partitions import _event_with_delivery, _log, _relation_exists
from webhooks import partitions
from webhooks.models import Delivery, WebhookLog
from webhooks.services import logs_prune
from webhooks.services.replay import log_replay

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
# SQLite's IMMEDIATE transactions would hold the other writer until the prune's commit.
two_writers = pytest.mark.skipif(connection.vendor != "postgresql", reason="two writers at once: PostgreSQL")


@contextlib.contextmanager
def before_statement(matches, action):
    """Run `action` in another thread (its own connection), to completion, just before this
    connection sends the first statement for which `matches(sql, params)` holds."""
    fired: list[bool] = []
    errors: list[BaseException] = []

    def run():
        try:
            action()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)
        finally:
            connection.close()

    def wrapper(execute, sql, params, many, context):
        if not fired and matches(sql, params or ()):
            fired.append(True)
            thread = threading.Thread(target=run)
            thread.start()
            thread.join(timeout=60)
            assert not thread.is_alive(), "the concurrent writer did not finish"
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield fired
    if errors:
        raise errors[0]


def _replays(log):
    def replay():
        replayed = log_replay(log=log)
        assert replayed.success, replayed.error

    return replay


@two_writers
@pytest.mark.django_db(transaction=True)
def test_a_replay_between_the_listing_and_the_batch_keeps_its_delivery_and_its_log(organization, webhook):
    """The batch path: the prune lists a finished delivery, a replay re-arms and sends it,
    then the prune's batch runs. The replayed delivery and the replay's log stay (the
    replay's update is not lost); the other finished delivery and its log go (the prune's
    is not lost either)."""
    old = timezone.now() - dt.timedelta(days=40)
    _, replayed = _event_with_delivery(organization, old)
    first_log = _log(replayed, old)
    _, pruned = _event_with_delivery(organization, old)
    _log(pruned, old)
    ids = {replayed.pk, pruned.pk}

    def batch_statement(sql, params):
        return sql.startswith("DELETE") and any(p in ids for p in _flat(params))

    with before_statement(batch_statement, _replays(first_log)) as fired:
        result = logs_prune(older_than_days=30, batch_size=10)
    assert fired
    replay_logs = WebhookLog.objects.filter(delivery_id=replayed.pk)
    assert replay_logs.count() == 1 and replay_logs.get().success  # the replay's attempt
    delivery = Delivery.objects.get(pk=replayed.pk)
    assert delivery.state == Delivery.State.SUCCEEDED and delivery.finished_at > timezone.now() - dt.timedelta(
        minutes=5
    )
    assert not Delivery.objects.filter(pk=pruned.pk).exists()
    assert not WebhookLog.objects.filter(delivery_id=pruned.pk).exists()
    assert result.deliveries == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_replay_before_a_day_of_deliveries_is_dropped_keeps_that_delivery_s_logs(organization, webhook):
    """The partition path: a replay re-arms a delivery of a day about to be dropped, just
    before the prune detaches that day. The delivery is kept (moved to the default
    partition) and so are its logs newer than the cutoff; a delivery of the same day still
    finished before the cutoff goes with its logs."""
    now = timezone.now()
    old_day = (now - dt.timedelta(days=20)).astimezone(dt.UTC).date()
    partitions.ensure_partitions(today=old_day, days_ahead=0)
    at = partitions.partition_for(old_day).start + dt.timedelta(hours=3)
    _, replayed = _event_with_delivery(organization, at)
    _, pruned = _event_with_delivery(organization, at)
    Delivery.objects.filter(pk__in=[replayed.pk, pruned.pk]).update(created_at=at)
    # Logs in the window of deliveries finished before the cutoff (clock skew, an earlier
    # replay's attempt recorded at its claim's time): they go with their delivery, if it goes.
    kept_log = _log(replayed, now - dt.timedelta(days=1))
    gone_log = _log(pruned, now - dt.timedelta(days=1))
    detached = partitions.partition_for(old_day, partitions.DELIVERIES).name

    def detach_statement(sql, params):
        return "DETACH PARTITION" in sql and detached in sql

    with before_statement(detach_statement, _replays(kept_log)) as fired:
        logs_prune(older_than_days=10)
    assert fired
    assert not _relation_exists(detached)
    assert Delivery.objects.get(pk=replayed.pk).state == Delivery.State.SUCCEEDED
    logs = set(WebhookLog.objects.filter(delivery_id=replayed.pk).values_list("pk", flat=True))
    assert kept_log.pk in logs and len(logs) == 2  # the earlier one and the replay's
    assert not Delivery.objects.filter(pk=pruned.pk).exists()
    assert not WebhookLog.objects.filter(pk=gone_log.pk).exists()


def _flat(params):
    for value in params if isinstance(params, list | tuple) else [params]:
        if isinstance(value, list | tuple):
            yield from value
        else:
            yield value


def _detached_day_with_a_delivery(organization, *, days_ago: int) -> tuple[str, WebhookLog]:
    """A delivery on the day `days_ago` days back, an attempt log of it today, and that day's
    deliveries partition detached: (its table's name, the log)."""
    now = timezone.now()
    day = (now - dt.timedelta(days=days_ago)).astimezone(dt.UTC).date()
    partitions.ensure_partitions(today=day, days_ahead=0)
    at = partitions.partition_for(day).start + dt.timedelta(hours=3)
    _, delivery = _event_with_delivery(organization, at)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=at)
    log = _log(delivery, now)
    name = partitions.partition_for(day, partitions.DELIVERIES).name
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{partitions.DELIVERIES}" DETACH PARTITION "{name}"')
    return name, log


@postgres_only
@pytest.mark.django_db
def test_a_day_detached_by_a_prune_that_stopped_is_finished_by_the_next(organization, webhook):
    """A prune stopped between a day's detach and its drop leaves the detached table: the
    next prune deletes its deliveries' logs and drops it."""
    left, stray = _detached_day_with_a_delivery(organization, days_ago=20)
    result = logs_prune(older_than_days=10)
    assert left in result.partitions_dropped and not _relation_exists(left)
    assert not WebhookLog.objects.filter(pk=stray.pk).exists()


@postgres_only
@pytest.mark.django_db
def test_a_day_detached_by_hand_within_the_retention_is_left_to_the_operator(organization, webhook):
    """Only leftovers older than the cutoff are a stopped prune's: a recent day an operator
    detached (to archive it) keeps its table and its deliveries' logs."""
    archived, log = _detached_day_with_a_delivery(organization, days_ago=3)
    result = logs_prune(older_than_days=10)
    assert archived not in result.partitions_dropped and _relation_exists(archived)
    assert WebhookLog.objects.filter(pk=log.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{archived}"')
        assert cursor.fetchone()[0] == 1


@pytest.mark.django_db
def test_replaying_an_attempt_whose_delivery_was_pruned_is_a_conflict(organization, webhook, api_client):
    from http import HTTPStatus

    old = timezone.now() - dt.timedelta(days=40)
    _, delivery = _event_with_delivery(organization, old)
    log = _log(delivery, timezone.now())  # still listed: newer than the cutoff
    gone = Delivery.objects.filter(pk=delivery.pk)
    gone._raw_delete(gone.db)  # what a prune does, a moment before the log goes
    response = api_client.post(f"/api/integrations/webhooks/{webhook.pk}/logs/{log.pk}/replay/")
    assert response.status_code == HTTPStatus.CONFLICT
    assert "no longer exists" in response.json()["detail"]
