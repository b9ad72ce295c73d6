"""Retention at scale, deliveries and events (migration webhooks 0014): on PostgreSQL both
are partitioned by day like the logs; pruning drops their whole old days and keeps, in the
default partition, a delivery not finished before the cutoff and an event a remaining
delivery refers to; idempotency keys are held by `webhook_event_keys`. The key behaviours
also run on SQLite (plain tables)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from tests.migrating import latest, migrate_to
from tests.webhooks.contracts.test_erasure import CANDIDATE, EMAIL, _payload, findings
from tests.webhooks.test_partitions import _relation_exists
from webhooks import partitions
from webhooks.models import Delivery, Event, WebhookLog
from webhooks.services import events as events_service
from webhooks.services import logs_prune, trigger_event, trigger_events
from webhooks.services.erasure import subject_erase

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")


def _log(delivery, created_at):
    return WebhookLog.objects.create(
        organization_id=delivery.organization_id,
        webhook_id=delivery.webhook_id,
        delivery=delivery,
        event_type="application.created",
        attempt=1,
        request_url="https://a.test/",
        created_at=created_at,
    )


def _at(organization, at, *, finished: bool = True, delivery_at=None, key: str | None = None):
    """An event created `at`, its one delivery created `delivery_at` (default `at`), finished
    `at` or still pending. UPDATEs move the rows into the partitions of those days."""
    event = trigger_event(organization=organization, event="application.created", payload={}, idempotency_key=key)
    Event.objects.filter(pk=event.pk).update(created_at=at)
    delivery = Delivery.objects.get(event_id=event.pk)
    fields = {"created_at": delivery_at or at}
    if finished:
        fields |= {"state": Delivery.State.SUCCEEDED, "finished_at": at}
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    return event, delivery


def _in(table: str, pk) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM "{table}" WHERE id = %s', [pk])
        return cursor.fetchone() is not None


@postgres_only
@pytest.mark.django_db
def test_prune_drops_old_days_of_deliveries_and_events_and_keeps_what_must_stay(organization, webhook):
    now = timezone.now()
    old_day = (now - dt.timedelta(days=20)).astimezone(dt.UTC).date()
    partitions.ensure_partitions(today=old_day, days_ahead=1)
    at = partitions.partition_for(old_day).start + dt.timedelta(hours=3)
    done_event, done = _at(organization, at)
    stray_event, stray_delivery = _at(organization, at)
    stray_log = _log(stray_delivery, now)  # e.g. a replay's attempt, logged after the cutoff
    pending_event, pending = _at(organization, at, finished=False)
    old_log_of_pending = _log(pending, at)
    # an old event whose (pending) delivery was written later, in today's partition
    late_event, late_delivery = _at(organization, at, finished=False, delivery_at=now)
    keyed_event, _ = _at(organization, at, key="k-gone")
    kept_keyed_event, _ = _at(organization, at, finished=False, key="k-kept")
    new_event, new_delivery = _at(organization, now)
    for table in (partitions.DELIVERIES, partitions.EVENTS):
        assert _in(
            partitions.partition_for(old_day, table).name, done.pk if table == partitions.DELIVERIES else done_event.pk
        )

    dry = logs_prune(older_than_days=10, dry_run=True)
    assert {partitions.partition_for(old_day, t).name for t in partitions.TABLES} <= set(dry.partitions_dropped)
    assert (dry.deliveries, dry.events) == (3, 3) and _in(
        partitions.partition_for(old_day, "webhook_events").name, done_event.pk
    )

    result = logs_prune(older_than_days=10)
    for table in partitions.TABLES:  # gone whole: their disk is returned
        for day in (old_day, old_day + dt.timedelta(days=1)):
            assert not _relation_exists(partitions.partition_for(day, table).name)
            assert partitions.partition_for(day, table).name in result.partitions_dropped
    assert (result.deliveries, result.events) == (3, 3)
    assert set(Delivery.objects.values_list("pk", flat=True)) == {
        pending.pk,
        late_delivery.pk,
        new_delivery.pk,
        *Delivery.objects.filter(event=kept_keyed_event).values_list("pk", flat=True),
    }
    assert set(Event.objects.values_list("pk", flat=True)) == {
        pending_event.pk,
        late_event.pk,
        kept_keyed_event.pk,
        new_event.pk,
    }
    # kept rows of the dropped days live in the default partitions now, unchanged
    assert _in(partitions.default_of(partitions.DELIVERIES), pending.pk)
    assert _in(partitions.default_of(partitions.EVENTS), pending_event.pk)
    assert _in(partitions.default_of(partitions.EVENTS), late_event.pk)
    assert Delivery.objects.get(pk=pending.pk).state == Delivery.State.PENDING
    assert Event.objects.get(pk=pending_event.pk).created_at == at
    # the stray newer log of a dropped delivery went with it; the pending one's old log by age
    assert not WebhookLog.objects.filter(pk__in=[stray_log.pk, old_log_of_pending.pk]).exists()
    assert not Event.objects.filter(pk__in=[done_event.pk, stray_event.pk, keyed_event.pk]).exists()
    # the pruned event's key is free again, the kept one's still held
    again = trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k-gone")
    assert not again.is_repeat and again.pk != keyed_event.pk
    repeat = trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k-kept")
    assert repeat.is_repeat and repeat.pk == kept_keyed_event.pk
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT idempotency_key, event_id FROM {partitions.EVENT_KEYS} ORDER BY 1")
        assert cursor.fetchall() == [("k-gone", again.pk), ("k-kept", kept_keyed_event.pk)]

    # a second run: the kept rows stay until they are finished and old, then go in batches
    Delivery.objects.filter(pk__in=[pending.pk, late_delivery.pk]).update(state=Delivery.State.FAILED, finished_at=at)
    second = logs_prune(older_than_days=10)
    assert second.deliveries == 2 and second.events == 2
    assert not Event.objects.filter(pk__in=[pending_event.pk, late_event.pk]).exists()


@pytest.mark.django_db
def test_a_key_whose_event_was_deleted_is_free_again(organization, webhook):
    """The ORM deletes events without touching `webhook_event_keys`: the next trigger with
    the key releases it (read after the statement) and stores a new event."""
    first = trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k1")
    Event.objects.filter(pk=first.pk).delete()
    second = trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k1")
    assert not second.is_repeat and second.pk != first.pk and second.delivery_count == 1
    assert (
        trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k1").pk
        == second.pk
    )
    Event.objects.filter(pk=second.pk).delete()
    results = trigger_events(
        organization=organization,
        events=[{"event": "application.created", "idempotency_key": "k1"}, {"event": "application.created"}],
    )
    assert [r.status for r in results] == ["created", "created"]
    assert Event.objects.filter(idempotency_key="k1").get().pk == results[0].event.pk


@postgres_only  # on SQLite a trigger holds the write lock from its read of the keys to its insert
@pytest.mark.django_db(transaction=True)
def test_two_triggers_reusing_a_released_key_at_once_store_one_event(organization, webhook, monkeypatch):
    """The seam of a dangling key: a second trigger (its own connection, in a thread) stores
    its event with the key between this trigger's read of the held keys and its release.
    This trigger must answer with that event, not store another nor fail."""
    first = trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k1")
    Event.objects.filter(pk=first.pk).delete()  # the key row outlives its event
    read_held = events_service._events_by_key
    winner: dict = {}

    def other_trigger_commits_meanwhile(org, keys):
        found = read_held(org, keys)
        if not winner:
            winner["started"] = True

            def trigger():
                try:
                    winner["event"] = trigger_event(
                        organization=organization, event="application.created", payload={}, idempotency_key="k1"
                    )
                finally:
                    connection.close()

            thread = threading.Thread(target=trigger)
            thread.start()
            thread.join(timeout=30)
        return found

    monkeypatch.setattr(events_service, "_events_by_key", other_trigger_commits_meanwhile)
    loser = trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k1")
    assert not winner["event"].is_repeat
    assert loser.is_repeat and loser.pk == winner["event"].pk
    assert list(Event.objects.filter(idempotency_key="k1").values_list("pk", flat=True)) == [loser.pk]
    assert Delivery.objects.filter(event_id=loser.pk).count() == 1


@pytest.mark.django_db
def test_erasure_leaves_no_key_naming_the_subject(organization, webhook):
    """An idempotency key that names the candidate goes with the erasure, whether its event
    was deleted (delivered) or redacted (still pending); the same key then stores a new event."""
    payload = _payload("application.created", {"id": CANDIDATE, "email": EMAIL})
    delivered = trigger_event(
        organization=organization,
        event="application.created",
        payload=payload,
        idempotency_key=f"application.created/{CANDIDATE}",
    )
    Delivery.objects.filter(event_id=delivered.pk).update(state="succeeded", finished_at=delivered.created_at)
    pending = trigger_event(
        organization=organization,
        event="application.created",
        payload=payload,
        idempotency_key=f"application.updated/{CANDIDATE}",
    )
    other = trigger_event(
        organization=organization, event="application.created", payload={}, idempotency_key="cand_other"
    )
    result = subject_erase(organization=organization, candidate_id=CANDIDATE, email=EMAIL, erased_by="dpo")
    assert findings(CANDIDATE) == []
    if connection.vendor == "postgresql":
        assert result.deleted[partitions.EVENT_KEYS] == 2
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT event_id FROM {partitions.EVENT_KEYS}")
            assert [row[0] for row in cursor.fetchall()] == [other.pk]
    assert Event.objects.filter(pk=pending.pk).exists()
    again = trigger_event(
        organization=organization,
        event="application.created",
        payload={},
        idempotency_key=f"application.created/{CANDIDATE}",
    )
    assert not again.is_repeat


BEFORE = [("webhooks", "0013_trigger_filter_sql")]
AFTER = [("webhooks", "0014_scale_partitions_deliveries_events")]


def _foreign_keys(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


def _unique(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass AND indisunique ORDER BY 1",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_the_migration_partitions_populated_deliveries_and_events_and_back(organization, webhook):
    now = timezone.now()
    try:
        apps = migrate_to(BEFORE)
        OldEvent, OldDelivery = apps.get_model("webhooks", "Event"), apps.get_model("webhooks", "Delivery")
        events = [
            OldEvent.objects.create(
                organization_id=organization.pk,
                type="application.created",
                payload={"n": n},
                idempotency_key=f"key-{n}" if n % 2 else None,
            )
            for n in range(6)
        ]
        for n, event in enumerate(events):
            OldEvent.objects.filter(pk=event.pk).update(created_at=now - dt.timedelta(days=n))
            OldDelivery.objects.create(
                organization_id=organization.pk,
                event_id=event.pk,
                webhook_id=webhook.pk,
                state="pending" if n == 5 else "succeeded",
                created_at=now - dt.timedelta(days=n),
            )
        OldDelivery.objects.update(created_at=now)  # auto_now_add: the dates again, by UPDATE
        for n, event in enumerate(events):
            OldDelivery.objects.filter(event_id=event.pk).update(created_at=now - dt.timedelta(days=n))

        def rows():
            return (
                sorted(OldEvent.objects.values_list("pk", "created_at", "payload", "idempotency_key")),
                sorted(OldDelivery.objects.values_list("pk", "event_id", "state", "created_at")),
            )

        before = rows()
        if connection.vendor == "postgresql":
            assert not partitions.is_partitioned(table=partitions.DELIVERIES)
            assert "webhook_events" in _foreign_keys("webhook_deliveries")
        migrate_to(AFTER)
        assert rows() == before
        if connection.vendor == "postgresql":
            for table in (partitions.DELIVERIES, partitions.EVENTS):
                assert partitions.is_partitioned(table=table)
                days = {p.day for p in partitions.partitions(table=table)}
                assert {(now - dt.timedelta(days=n)).astimezone(dt.UTC).date() for n in range(6)} <= days
                with connection.cursor() as cursor:
                    cursor.execute(f'SELECT count(*) FROM "{partitions.default_of(table)}"')
                    assert cursor.fetchone()[0] == 0  # every row in its own day
            assert _foreign_keys("webhook_deliveries") == {"webhooks", "organizations_organization"}
            assert "webhook_deliveries" not in _foreign_keys("webhook_logs")
            assert any("(event_id, webhook_id, created_at)" in d for d in _unique("webhook_deliveries"))
            assert not any("idempotency_key" in d for d in _unique("webhook_events"))
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT idempotency_key, event_id FROM {partitions.EVENT_KEYS} ORDER BY 1")
                assert cursor.fetchall() == [(e.idempotency_key, e.pk) for e in events if e.idempotency_key]
        # the keys still hold after the migration
        repeat = trigger_event(
            organization=organization, event="application.created", payload={"n": 3}, idempotency_key="key-3"
        )
        assert repeat.is_repeat and repeat.pk == events[3].pk
        Event.objects.exclude(pk__in=[e.pk for e in events]).delete()
        after = rows()
        assert after == before
        migrate_to(BEFORE)  # back: plain tables, the constraints as they were, every row
        assert rows() == before
        if connection.vendor == "postgresql":
            for table in (partitions.DELIVERIES, partitions.EVENTS):
                assert not partitions.is_partitioned(table=table)
            assert "webhook_events" in _foreign_keys("webhook_deliveries")
            assert "webhook_deliveries" in _foreign_keys("webhook_logs")
            assert any("(event_id, webhook_id)" in d for d in _unique("webhook_deliveries"))
            assert any("(organization_id, idempotency_key)" in d for d in _unique("webhook_events"))
            assert not _relation_exists(partitions.EVENT_KEYS)
    finally:
        migrate_to(latest())


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_over_dangling_rows_deleting_them_and_forward_again(organization, webhook):
    """Since 0014 nothing in the database stops a delivery outliving its event or a log its
    delivery (raw deletes, a stopped prune). Reversing 0014 restores the foreign keys, which
    such rows would violate: the reverse deletes them first (the old schema's cascade would
    have), keeps every other row, and the migration then goes forward again unchanged."""
    now = timezone.now()
    kept_event, kept = _at(organization, now)
    kept_log = _log(kept, now)
    gone_event, orphan_delivery = _at(organization, now - dt.timedelta(days=2))
    orphan_delivery_log = _log(orphan_delivery, now)
    lost_event, lost_delivery = _at(organization, now - dt.timedelta(days=1))
    orphan_log = _log(lost_delivery, now)
    for model, pk in ((Event, gone_event.pk), (Delivery, lost_delivery.pk)):
        rows = model.objects.filter(pk=pk)
        rows._raw_delete(rows.db)  # no cascade: what the database now allows
    try:
        apps = migrate_to(BEFORE)
        OldEvent, OldDelivery = apps.get_model("webhooks", "Event"), apps.get_model("webhooks", "Delivery")
        OldLog = apps.get_model("webhooks", "WebhookLog")
        assert set(OldEvent.objects.values_list("pk", flat=True)) == {kept_event.pk, lost_event.pk}  # no delivery: fine
        assert list(OldDelivery.objects.values_list("pk", flat=True)) == [kept.pk]
        assert list(OldLog.objects.values_list("pk", flat=True)) == [kept_log.pk]
        assert not OldLog.objects.filter(pk__in=[orphan_log.pk, orphan_delivery_log.pk]).exists()
        if connection.vendor == "postgresql":
            assert "webhook_events" in _foreign_keys("webhook_deliveries")
            assert "webhook_deliveries" in _foreign_keys("webhook_logs")
        migrate_to(AFTER)
        assert list(Delivery.objects.values_list("pk", "event_id")) == [(kept.pk, kept_event.pk)]
        assert list(WebhookLog.objects.values_list("pk", flat=True)) == [kept_log.pk]
        if connection.vendor == "postgresql":
            assert partitions.is_partitioned(table=partitions.DELIVERIES)
    finally:
        migrate_to(latest())
