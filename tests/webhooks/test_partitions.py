"""Retention at scale: daily partitions of webhook_logs, webhook_deliveries and
webhook_events (PostgreSQL), created ahead and dropped whole, the rows that must stay kept;
orphan events pruned along the created_at index (both backends); the migrations that
convert populated tables."""

from __future__ import annotations

import datetime as dt
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import ProgrammingError, connection
from django.utils import timezone

from tests.concurrency import Concurrently
from tests.migrating import latest, migrate_to
from webhooks import partitions
from webhooks.models import Delivery, Event, WebhookLog
from webhooks.services import logs_prune, trigger_event

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")


def _log(delivery, created_at, **fields):
    return WebhookLog.objects.create(
        organization_id=delivery.organization_id,
        webhook_id=delivery.webhook_id,
        delivery=delivery,
        event_type="application.created",
        attempt=1,
        request_url="https://a.test/",
        created_at=created_at,
        **fields,
    )


def _event_with_delivery(organization, created_at, *, finished: bool = True):
    event = trigger_event(organization=organization, event="application.created", payload={})
    Event.objects.filter(pk=event.pk).update(created_at=created_at)
    delivery = Delivery.objects.get(event=event)
    if finished:
        Delivery.objects.filter(pk=delivery.pk).update(state=Delivery.State.SUCCEEDED, finished_at=created_at)
    return event, delivery


def _relation_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        return cursor.fetchone()[0] is not None


@postgres_only
@pytest.mark.django_db
def test_partitions_are_created_ahead_idempotently_and_take_their_days_rows_from_the_default(organization, webhook):
    assert partitions.is_partitioned()
    today = timezone.now().astimezone(dt.UTC).date()
    far = today + dt.timedelta(days=30)
    _, delivery = _event_with_delivery(organization, timezone.now(), finished=False)
    moved = _log(delivery, partitions.partition_for(far).start + dt.timedelta(hours=5))
    with connection.cursor() as cursor:  # no partition for that day yet: the insert went to the default
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT} WHERE id = %s", [moved.pk])
        assert cursor.fetchone()[0] == 1

    created = partitions.ensure_partitions(today=far, days_ahead=2)
    days = [far + dt.timedelta(days=n) for n in range(3)]
    assert created == [partitions.partition_for(day, table).name for table in partitions.TABLES for day in days]
    assert partitions.ensure_partitions(today=far, days_ahead=2) == []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.partition_for(far).name} WHERE id = %s", [moved.pk])
        assert cursor.fetchone()[0] == 1
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT}")
        assert cursor.fetchone()[0] == 0
    assert WebhookLog.objects.filter(pk=moved.pk).exists()
    # the schedule's task creates today's and the next days'
    from webhooks import tasks

    tasks.create_partitions()
    for table in partitions.TABLES:
        days = {p.day for p in partitions.partitions(table=table)}
        assert {today + dt.timedelta(days=n) for n in range(partitions.PARTITION_DAYS_AHEAD + 1)} <= days, table


@postgres_only
@pytest.mark.django_db
def test_a_day_ahead_is_attached_without_scanning_the_default_partition(organization, webhook):
    """The schedule's days ahead: a CHECK constraint on each default partition, validated
    before the attach (without blocking writers), lets the attach skip its scan of the
    default under the ACCESS EXCLUSIVE lock (PostgreSQL says so at DEBUG1); the constraint
    goes after, and a row of another day in the default stays there."""
    _, delivery = _event_with_delivery(organization, timezone.now(), finished=False)
    in_default = _log(delivery, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))  # no partition covers that day
    far = timezone.now().astimezone(dt.UTC).date() + dt.timedelta(days=40)
    notices: list[str] = []
    connection.ensure_connection()

    def handler(diagnostic):
        notices.append(diagnostic.message_primary or "")

    connection.connection.add_notice_handler(handler)
    with connection.cursor() as cursor:
        cursor.execute("SET client_min_messages = debug1")
    try:
        created = partitions.ensure_partitions(today=far, days_ahead=1)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET client_min_messages")
        connection.connection.remove_notice_handler(handler)
    assert len(created) == 2 * len(partitions.TABLES)
    for table in partitions.TABLES:
        implied = f'updated partition constraint for default partition "{partitions.default_of(table)}" is implied'
        assert sum(implied in notice for notice in notices) == 2, (table, notices)
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE contype = 'c' AND conname LIKE '%%_default_not_%%'")
        assert cursor.fetchall() == []
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT} WHERE id = %s", [in_default.pk])
        assert cursor.fetchone()[0] == 1


@postgres_only
@pytest.mark.django_db
def test_a_day_ahead_whose_attach_fails_leaves_no_constraint_refusing_its_rows(organization, webhook):
    """The attach of a day ahead fails after its CHECK constraint was validated on the
    default partition (here its table name is taken): the constraint goes all the same, so
    the day's rows still have a place (the default) until a later run creates the day."""
    _, delivery = _event_with_delivery(organization, timezone.now(), finished=False)
    far = timezone.now().astimezone(dt.UTC).date() + dt.timedelta(days=40)
    taken = partitions.partition_for(far, partitions.LOGS).name
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE "{taken}" (id integer)')
    with pytest.raises(ProgrammingError):
        partitions.ensure_partitions(today=far, days_ahead=0, tables=(partitions.LOGS,))
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE contype = 'c' AND conname LIKE '%%_default_not_%%'")
        assert cursor.fetchall() == []
    log = _log(delivery, dt.datetime.combine(far, dt.time(12), tzinfo=dt.UTC))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.default_of(partitions.LOGS)} WHERE id = %s", [log.pk])
        assert cursor.fetchone()[0] == 1


@postgres_only
@pytest.mark.django_db
def test_prune_drops_whole_old_days_and_batch_deletes_only_the_boundary(organization, webhook):
    now = timezone.now()
    old_day = (now - dt.timedelta(days=20)).astimezone(dt.UTC).date()
    partitions.ensure_partitions(today=old_day, days_ahead=1)
    old_partition = partitions.partition_for(old_day)
    _, delivery = _event_with_delivery(organization, now, finished=False)
    in_old_day = [_log(delivery, old_partition.start + dt.timedelta(hours=h)).pk for h in (1, 2, 3)]
    cutoff = now - dt.timedelta(days=10)
    boundary_old = _log(delivery, cutoff - dt.timedelta(minutes=5)).pk  # same day as the cutoff, older
    kept = [_log(delivery, cutoff + dt.timedelta(minutes=5)).pk, _log(delivery, now).pk]

    out = StringIO()
    call_command("prune_webhook_logs", "--older-than-days", "10", "--dry-run", stdout=out)
    assert "Would delete 4 logs" in out.getvalue()
    # the two days of each of the three tables (the deliveries' and events' empty)
    assert f"6 whole daily partitions would be dropped: {old_partition.name}," in out.getvalue()
    assert _relation_exists(old_partition.name) and WebhookLog.objects.count() == 6

    out = StringIO()
    call_command("prune_webhook_logs", "--older-than-days", "10", stdout=out)
    assert "Deleted 4 logs" in out.getvalue()
    assert not _relation_exists(old_partition.name)
    assert old_partition.name not in {p.name for p in partitions.partitions()}
    assert set(WebhookLog.objects.values_list("pk", flat=True)) == set(kept)
    assert not WebhookLog.objects.filter(pk__in=[*in_old_day, boundary_old]).exists()


@pytest.mark.django_db
def test_prune_keeps_the_window_and_pending_deliveries_and_removes_the_rest(organization, webhook):
    now = timezone.now()
    old = now - dt.timedelta(days=40)
    old_event, old_delivery = _event_with_delivery(organization, old)
    _log(old_delivery, old)
    pending_event, pending = _event_with_delivery(organization, old, finished=False)
    _log(pending, old)  # the log goes (older than the window), the pending delivery and its event stay
    new_event, new_delivery = _event_with_delivery(organization, now)
    new_log = _log(new_delivery, now)

    result = logs_prune(older_than_days=30, batch_size=1)
    assert (result.logs, result.deliveries, result.events) == (2, 1, 1)
    assert list(WebhookLog.objects.values_list("pk", flat=True)) == [new_log.pk]
    assert set(Delivery.objects.values_list("pk", flat=True)) == {pending.pk, new_delivery.pk}
    assert set(Event.objects.values_list("pk", flat=True)) == {pending_event.pk, new_event.pk}
    assert not Event.objects.filter(pk=old_event.pk).exists()


@pytest.mark.django_db
def test_orphan_event_batches_walk_the_created_at_index_with_not_exists():
    """Each batch of the orphan-event pruning is a window of the created_at index, and the
    delivery check a NOT EXISTS probe of the deliveries' event index, never a full scan."""
    from django.db.models import Exists, OuterRef

    cutoff = timezone.now()
    window = (
        Event.objects.filter(created_at__lt=cutoff).order_by("created_at", "pk").values_list("created_at", "pk")[:1000]
    )
    batch = Event.objects.filter(pk__in=[uuid.uuid4()], created_at__lt=cutoff).exclude(
        Exists(Delivery.objects.filter(event=OuterRef("pk")))
    )
    plans = []
    for queryset in (window, batch):
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                plans.append(" | ".join(str(row[-1]) for row in cursor.fetchall()))
            else:
                cursor.execute("SET LOCAL enable_seqscan = off")  # an empty table: ask for the plan a big one gets
                cursor.execute(f"EXPLAIN {sql}", params)
                plans.append(" | ".join(row[0] for row in cursor.fetchall()))
    window_plan, batch_plan = plans
    if connection.vendor == "sqlite":
        assert "USING INDEX webhook_events_created_at" in window_plan, window_plan
        assert "SCAN webhook_events" not in window_plan.replace("USING INDEX", "")
        # The probe is by event id on an index led by it: the (event, webhook) unique one.
        assert "webhook_deliveries" in batch_plan and "INDEX" in batch_plan and "(event_id=?)" in batch_plan, batch_plan
        assert "SCAN webhook_deliveries " not in batch_plan + " "
    else:
        # Each partition's copy of the index (`webhook_events_pYYYYMMDD_created_at_idx`).
        assert "created_at_idx" in window_plan or "webhook_events_created_at" in window_plan, window_plan
        assert "Seq Scan" not in window_plan + batch_plan


@pytest.mark.django_db(transaction=True)
def test_inserts_during_a_prune_lose_nothing(organization, webhook):
    now = timezone.now()
    old = now - dt.timedelta(days=40)
    _, old_delivery = _event_with_delivery(organization, old)
    for _ in range(200):
        _log(old_delivery, old)
    _, live = _event_with_delivery(organization, now, finished=False)
    inserted: list[uuid.UUID] = []

    def insert():
        for _ in range(100):
            inserted.append(_log(live, timezone.now()).pk)

    def prune():
        logs_prune(older_than_days=30, batch_size=10)

    with Concurrently(insert, prune):
        pass
    assert not WebhookLog.objects.filter(delivery=old_delivery).exists()
    assert set(WebhookLog.objects.values_list("pk", flat=True)) == set(inserted)
    assert len(inserted) == 100


BEFORE = [("webhooks", "0010_contracts_flow")]
AFTER = [("webhooks", "0011_scale_partitions")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_row_of_a_populated_table(organization, webhook):
    _, delivery = _event_with_delivery(organization, timezone.now())
    now = timezone.now()
    try:
        OldLog = migrate_to(BEFORE).get_model("webhooks", "WebhookLog")
        assert not partitions.is_partitioned()
        rows = [
            OldLog.objects.create(
                organization_id=delivery.organization_id,
                webhook_id=delivery.webhook_id,
                delivery_id=delivery.pk,
                event_type="application.created",
                message_id=delivery.message_id,
                attempt=1,
                request_url="https://a.test/",
                created_at=now - dt.timedelta(days=d, minutes=m),
                response_status=200,
            )
            for d in range(5)
            for m in (1, 2)
        ]
        before = sorted(OldLog.objects.values_list("pk", "created_at", "response_status", "delivery_id"))
        migrate_to(AFTER)
        after = sorted(OldLog.objects.values_list("pk", "created_at", "response_status", "delivery_id"))
        assert after == before and len(after) == len(rows)
        if connection.vendor == "postgresql":
            assert partitions.is_partitioned()
            days = {p.day for p in partitions.partitions()}
            assert {(now - dt.timedelta(days=d, minutes=2)).astimezone(dt.UTC).date() for d in range(5)} <= days
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT}")
                assert cursor.fetchone()[0] == 0  # every row in its own day
        # back again: the plain table, every row still there
        migrate_to(BEFORE)
        assert not partitions.is_partitioned()
        assert sorted(OldLog.objects.values_list("pk", "created_at", "response_status", "delivery_id")) == before
    finally:
        migrate_to(latest())


@pytest.mark.django_db
def test_the_upgrade_procedure_creates_the_partitions_by_the_schedule():
    """README "Retention at scale": after `migrate`, `setup_schedules` registers the daily
    schedule whose task creates today's and the next days' partitions."""
    from django.utils.module_loading import import_string
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="webhooks.create_partitions")
    assert schedule.minutes == 24 * 60
    import_string(schedule.func)()
    if connection.vendor == "postgresql":
        today = timezone.now().astimezone(dt.UTC).date()
        days = {p.day for p in partitions.partitions()}
        assert {today + dt.timedelta(days=n) for n in range(partitions.PARTITION_DAYS_AHEAD + 1)} <= days
        assert _relation_exists(partitions.DEFAULT)
    else:
        assert partitions.partitions() == []


@pytest.mark.django_db
def test_batches_delete_raw_without_the_collector_and_take_a_delivery_s_stray_newer_log(organization, webhook):
    """Finished deliveries and orphan events go by raw batched DELETEs (no collector SELECT
    of related rows per batch); a log newer than the cutoff of a pruned delivery goes with
    it (the foreign key would otherwise fail), as the collector's CASCADE did."""
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()
    old = now - dt.timedelta(days=40)
    pairs = [_event_with_delivery(organization, old) for _ in range(5)]
    for _, delivery in pairs:
        _log(delivery, old)
    stray = _log(pairs[0][1], now)  # e.g. a replay's attempt logged after the cutoff
    kept_event, kept_delivery = _event_with_delivery(organization, now)
    kept_log = _log(kept_delivery, now)

    with CaptureQueriesContext(connection) as queries:
        result = logs_prune(older_than_days=30, batch_size=2)
    assert (result.deliveries, result.events) == (5, 5)
    assert not WebhookLog.objects.filter(pk=stray.pk).exists()
    assert list(WebhookLog.objects.values_list("pk", flat=True)) == [kept_log.pk]
    assert list(Delivery.objects.values_list("pk", flat=True)) == [kept_delivery.pk]
    assert list(Event.objects.values_list("pk", flat=True)) == [kept_event.pk]
    sqls = [q["sql"] for q in queries.captured_queries]
    deletes = [s for s in sqls if s.startswith("DELETE")]
    # 3 windows of deliveries (2 + 2 + 1): a logs DELETE and a deliveries DELETE each;
    # 3 windows of events: one DELETE ... NOT EXISTS each; plus the logs older than the cutoff.
    assert sum('DELETE FROM "webhook_deliveries"' in s for s in deletes) == 3, deletes
    assert sum('DELETE FROM "webhook_events"' in s and "NOT" in s and "EXISTS" in s for s in deletes) == 3, deletes
    # No collector: it would SELECT the batch's logs (by delivery) or deliveries (by event).
    collector = [s for s in sqls if s.startswith("SELECT") and ('"delivery_id" IN' in s or '"event_id" IN' in s)]
    assert not collector, collector
