"""Lean storage (migration 0012, bench/storage.py): what attempt logs no longer store is
rebuilt exactly, old rows read as before, and each index serves the query it is kept for."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from tests.conftest import make_key_client
from tests.migrating import latest, migrate_to
from tests.webhooks.test_scale_reads import _plan, _uses
from webhooks import selectors, tasks
from webhooks.models import Delivery, Event, WebhookLog
from webhooks.services import trigger_event, webhook_create

BASE = "/api/integrations/webhooks/"


@pytest.mark.django_db
def test_a_log_stores_only_custom_headers_and_shows_them_as_sent(api_client, organization, receiver):
    webhook = webhook_create(
        organization=organization,
        name="h",
        url=receiver.url,
        events=["*"],
        headers={"X-Tenant": "acme", "Authorization": "Bearer receiver-sentinel-token"},
    )
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    [request] = receiver.wait_for(1)
    log = WebhookLog.objects.get()
    assert log.custom_headers == {"X-Tenant": "acme", "Authorization": "[redacted]"}
    [row] = api_client.get(f"{BASE}{webhook.pk}/logs/").json()["results"]
    assert row["message_id"] == request.headers["webhook-id"] == Delivery.objects.get().message_id
    assert row["request_headers"] == {
        "X-Tenant": "acme",
        "Authorization": "[redacted]",
        "content-type": request.headers["content-type"],
        "webhook-id": request.headers["webhook-id"],
        "webhook-timestamp": request.headers["webhook-timestamp"],
        "webhook-signature": "[redacted]",  # not kept
    }


@pytest.mark.django_db(transaction=True)
def test_logs_written_before_the_migration_read_as_before(organization):
    old = migrate_to([("webhooks", "0011_scale_partitions")])
    try:
        OldWebhook, OldEvent = old.get_model("webhooks", "Webhook"), old.get_model("webhooks", "Event")
        OldDelivery, OldLog = old.get_model("webhooks", "Delivery"), old.get_model("webhooks", "WebhookLog")
        hook = OldWebhook.objects.create(organization_id=organization.pk, name="w", url="https://a.test/", secret="x")
        event = OldEvent.objects.create(organization_id=organization.pk, type="job.opened")
        delivery = OldDelivery.objects.create(
            organization_id=organization.pk, event=event, webhook=hook, state="succeeded", attempts=1
        )
        at = timezone.now() - timedelta(minutes=5)
        headers = {
            "X-Tenant": "acme",
            "content-type": "application/json",
            "webhook-id": f"msg_{delivery.pk.hex}",
            "webhook-timestamp": str(int(at.timestamp()) - 1),  # as sent, even a second off
            "webhook-signature": "v1,c2lnbmF0dXJl",
        }
        OldLog.objects.create(
            organization_id=organization.pk, webhook=hook, delivery=delivery, event_type="job.opened",
            message_id=f"msg_{delivery.pk.hex}", attempt=1, request_url=hook.url, request_headers=headers,
            response_status=200, success=True, created_at=at,
        )  # fmt: skip
    finally:
        migrate_to(latest())
    [row] = make_key_client(organization).get(f"{BASE}{hook.pk}/logs/").json()["results"]
    assert row["message_id"] == f"msg_{delivery.pk.hex}"
    assert row["request_headers"] == {**headers, "webhook-signature": "[redacted]"}


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN output is PostgreSQL's")
def test_each_index_serves_its_query(organization, receiver):
    """docs/RELIABILITY.md ("Indexes") lists these: each kept index, the query it serves."""
    hooks = [webhook_create(organization=organization, name=f"w{n}", url=receiver.url, events=["*"]) for n in range(3)]
    trigger_event(organization=organization, event="job.opened", payload={})
    start = timezone.now() - timedelta(hours=2)
    logs = []
    for hook in hooks:
        delivery = Delivery.objects.get(webhook=hook)
        logs += [
            WebhookLog(
                organization_id=organization.pk,
                webhook=hook,
                delivery=delivery,
                event_type=f"e{i % 7}",
                attempt=1,
                request_url=hook.url,
                success=i % 10 != 3,
                created_at=start + timedelta(seconds=i),
            )
            for i in range(1000)
        ]
    WebhookLog.objects.bulk_create(logs)
    # Deliveries as they age: mostly succeeded, some failed, a few pending.
    events = Event.objects.bulk_create(Event(organization=organization, type="job.opened") for _ in range(1000))
    states = ["succeeded"] * 8 + ["failed", "pending"]
    Delivery.objects.bulk_create(
        Delivery(organization=organization, event=event, webhook=hooks[i % 3], state=states[i % 10])
        for i, event in enumerate(events)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhook_logs")
        cursor.execute("ANALYZE webhook_deliveries")
    hook = hooks[0]
    # The API's log filters: webhook + created, webhook + success + created, event type.
    assert _uses("log_webhook_created", _plan(selectors.webhook_log_list(webhook=hook)[:51]))
    assert _uses("log_webhook_created", _plan(selectors.webhook_log_list(webhook=hook, success=True)[:51]))
    assert _uses("log_webhook_failed", _plan(selectors.webhook_log_list(webhook=hook, success=False)[:51]))
    assert _uses("log_webhook_event", _plan(selectors.webhook_log_list(webhook=hook, event="e3")[:51]))
    # The last failure announced when a webhook is disabled (services/operational.py).
    last_failure = WebhookLog.objects.filter(webhook_id=hook.pk, success=False).order_by("-created_at")[:1]
    assert _uses("log_webhook_failed", _plan(last_failure))
    # Pruning in batches (services/retention.py), and a delivery's logs (replay, cascades).
    assert _uses("log_created", _plan(WebhookLog.objects.filter(created_at__lt=start).values("pk")[:1000]))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'webhook_logs_delivery_id%%' AND relkind IN ('i', 'I')"
            " AND NOT relispartition"
        )
        [(by_delivery,)] = cursor.fetchall()
    assert _uses(by_delivery, _plan(WebhookLog.objects.filter(delivery=delivery)))
    # Stats' pending and failed counts (selectors.webhook_stats), ordered delivery's older pending.
    failed = Delivery.objects.filter(webhook=hook, state="failed").values("created_at")[:10_000]
    assert _uses("delivery_webhook_unfinished", _plan(failed))
    # Pending rows are also indexed by `delivery_due` (the claim): with few webhooks, the
    # planner may take either; both leave succeeded deliveries out.
    pending = _plan(Delivery.objects.filter(webhook=hook, state="pending").values("created_at")[:10_000])
    assert _uses("delivery_webhook_unfinished", pending) or _uses("delivery_due", pending)


# --- lean indexes (migration 0015) ----------------------------------------------------------

ORGANIZATION_INDEXED = ("webhook_logs", "webhook_deliveries", "webhook_events")


def _organization_indexes() -> dict[str, int]:
    """Per table: how many of its relations (the table, and on PostgreSQL each partition)
    hold an index on `organization_id` alone, and how many relations there are."""
    found = {}
    for table in ORGANIZATION_INDEXED:
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                constraints = connection.introspection.get_constraints(cursor, table)
                indexed = any(spec["index"] and spec["columns"] == ["organization_id"] for spec in constraints.values())
                found[table] = (int(indexed), 1)
                continue
            cursor.execute(
                "SELECT r.relname, EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = r.oid"
                " AND a.attnum = x.indkey[0] WHERE x.indrelid = r.oid AND x.indnatts = 1"
                " AND a.attname = 'organization_id') FROM pg_class r WHERE r.relname = %s"
                " OR r.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
                [table, table],
            )
            rows = cursor.fetchall()
        found[table] = (sum(indexed for _, indexed in rows), len(rows))
    return found


def _finished_indexes() -> dict[str, list[str]]:
    """The deliveries' indexes pruning walks, by name: their columns."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "webhook_deliveries")
    return {name: spec["columns"] for name, spec in constraints.items() if name.startswith("delivery_finished")}


@pytest.mark.django_db(transaction=True)
def test_migration_0015_drops_the_organization_indexes_of_populated_logs_and_deliveries_and_back():
    """Forwards on a populated database: the single-column `organization_id` indexes of logs
    and deliveries go (on every partition), the events' stays, `delivery_finished` becomes
    `delivery_finished_at`, every row stays; backwards they come back as they were."""
    before = [("webhooks", "0014_scale_partitions_deliveries_events")]
    old = migrate_to(before)
    try:
        Organization = old.get_model("organizations", "Organization")
        OldWebhook, OldEvent = old.get_model("webhooks", "Webhook"), old.get_model("webhooks", "Event")
        OldDelivery, OldLog = old.get_model("webhooks", "Delivery"), old.get_model("webhooks", "WebhookLog")
        org = Organization.objects.create(name="Migrating", slug="migrating-0015")
        hook = OldWebhook.objects.create(organization_id=org.pk, name="w", url="https://a.test/", secret="x")
        for days in (0, 3):  # two days: two partitions of each table on PostgreSQL
            at = timezone.now() - timedelta(days=days)
            event = OldEvent.objects.create(organization_id=org.pk, type="job.opened")
            OldEvent.objects.filter(pk=event.pk).update(created_at=at)
            delivery = OldDelivery.objects.create(
                organization_id=org.pk, event_id=event.pk, webhook=hook, state="succeeded", attempts=1
            )
            OldDelivery.objects.filter(pk=delivery.pk).update(created_at=at)
            OldLog.objects.create(
                organization_id=org.pk, webhook=hook, delivery_id=delivery.pk, event_type="job.opened", attempt=1,
                request_url=hook.url, success=True, created_at=at,
            )  # fmt: skip
        everywhere = {table: (n, n) for table, (_, n) in _organization_indexes().items()}
        assert _organization_indexes() == everywhere
        assert _finished_indexes() == {"delivery_finished": ["state", "finished_at"]}
        migrate_to([("webhooks", "0015_lean_indexes")])
        after = _organization_indexes()
        assert after["webhook_logs"][0] == after["webhook_deliveries"][0] == 0
        assert after["webhook_events"] == everywhere["webhook_events"]
        assert _finished_indexes() == {"delivery_finished_at": ["finished_at"]}
        assert [m.objects.filter(organization_id=org.pk).count() for m in (Event, Delivery, WebhookLog)] == [2, 2, 2]
        migrate_to(before)
        assert _organization_indexes() == everywhere
        assert _finished_indexes() == {"delivery_finished": ["state", "finished_at"]}
        assert OldLog.objects.filter(organization_id=org.pk).count() == 2
    finally:
        migrate_to(latest())


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN output is PostgreSQL's")
def test_each_kept_index_of_deliveries_events_and_keys_serves_its_query(organization, other_organization, receiver):
    """docs/RELIABILITY.md ("Indexes"): the indexes `test_each_index_serves_its_query` does
    not cover (the claim, pruning, cascades, tenancy, keys, lookups by id)."""
    from django.db.models.functions import Now

    from webhooks.engine import store

    hook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    events = Event.objects.bulk_create(
        Event(organization=organization, type="job.opened", idempotency_key=f"k{i}" if i % 10 == 0 else None)
        for i in range(300)
    )
    # A small organization beside: erasure and the cascade read its few events by the index.
    Event.objects.bulk_create(Event(organization=other_organization, type="job.opened") for _ in range(3))
    states = ["succeeded"] * 8 + ["failed", "pending"]
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            organization=organization,
            event=event,
            webhook=hook,
            state=states[i % 10],
            attempts=i % 2,
            next_attempt_at=now if states[i % 10] == "pending" else None,
            finished_at=None if states[i % 10] == "pending" else now - timedelta(days=i % 40),
            lease_token=uuid.uuid4() if i == 9 else None,
            lease_expires_at=now + timedelta(minutes=1) if i == 9 else None,
        )
        for i, event in enumerate(events)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO webhook_event_keys (organization_id, idempotency_key, event_id, created_at)"
            " SELECT organization_id, idempotency_key, id, created_at FROM webhook_events"
            " WHERE idempotency_key IS NOT NULL"
        )
        for table in ("webhook_events", "webhook_deliveries", "webhook_event_keys"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE %s AND relkind IN ('i', 'I') AND NOT relispartition",
            ["webhook_events_created_at%"],
        )
        [(events_created,)] = cursor.fetchall()
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE %s AND relkind IN ('i', 'I') AND NOT relispartition",
            ["webhook_events_organization_id%"],
        )
        [(events_by_organization,)] = cursor.fetchall()
    cutoff = now - timedelta(days=30)
    # The claim (webhooks/engine/store.py, flow.py): due rows, first attempts, leases in flight.
    due = Delivery.objects.filter(store._due(), next_attempt_at__lte=Now()).order_by("next_attempt_at")[:100]
    assert _uses("delivery_due", _plan(due))
    first = Delivery.objects.filter(store._due(), next_attempt_at__lte=Now(), attempts=0).order_by("next_attempt_at")
    assert _uses("delivery_due_first", _plan(first[:100]))
    leased = Delivery.objects.filter(
        state="pending", lease_token__isnull=False, lease_expires_at__gt=Now(), webhook_id__in=[hook.pk]
    )
    assert _uses("delivery_leased", _plan(leased.values("webhook_id")))
    # Pruning finished deliveries (services/retention.py, keyset over both finished states).
    finished = Delivery.objects.filter(state__in=["succeeded", "failed"], finished_at__lt=cutoff)
    finished = finished.order_by("finished_at", "pk").values_list("finished_at", "pk")
    assert _uses("delivery_finished_at", _plan(finished[:1000]))
    after = (cutoff - timedelta(days=3), uuid.uuid4())
    window = finished.filter(Q(finished_at__gt=after[0]) | Q(finished_at=after[0], pk__gt=after[1]))
    assert _uses("delivery_finished_at", _plan(window[:1000]))
    # An event's deliveries (the orphan check, erasure, the ORM's cascade).
    assert _uses("unique_delivery_per_webhook", _plan(Delivery.objects.filter(event=events[0])))
    # Pruning orphan events (keyset on created_at), erasure's events of an organization, keys.
    old_events = Event.objects.filter(created_at__lt=now).order_by("created_at", "pk").values_list("created_at", "pk")
    assert _uses(events_created, _plan(old_events[:1000]))
    assert _uses(events_by_organization, _plan(Event.objects.filter(organization=other_organization)))
    keyed = Event.objects.filter(organization=organization, idempotency_key__in=["k0", "k10"])
    assert _uses("unique_event_idempotency_key", _plan(keyed))
    # By id: a log, a delivery, an event (the API, the engine's writes).
    assert _uses("webhook_deliveries_pkey", _plan(Delivery.objects.filter(pk=uuid.uuid4())))
    assert _uses("webhook_events_pkey", _plan(Event.objects.filter(pk=uuid.uuid4())))
    assert _uses("webhook_logs_pkey", _plan(WebhookLog.objects.filter(pk=uuid.uuid4())))
    # webhook_event_keys: the trigger's ON CONFLICT target (the primary key), the prune's window.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT event_id FROM webhook_event_keys WHERE organization_id = %s AND idempotency_key = %s",
            [organization.pk, "k0"],
        )
        assert "webhook_event_keys_pkey" in "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(
            "EXPLAIN SELECT ctid, event_id, created_at FROM webhook_event_keys WHERE created_at < %s"
            " ORDER BY created_at, event_id LIMIT 10000",
            [now],
        )
        assert "webhook_event_keys_created_at" in "\n".join(row[0] for row in cursor.fetchall())


def test_logs_and_deliveries_have_no_organization_index_the_events_keep_theirs(db):
    """Every query of logs or deliveries that names the organization names the webhook (or
    the event) too; an organization's deletion and erasure read those tables once."""
    found = _organization_indexes()
    assert found["webhook_logs"][0] == found["webhook_deliveries"][0] == 0
    assert found["webhook_events"][0] == found["webhook_events"][1] > 0


@pytest.mark.django_db
def test_deleting_an_organization_deletes_its_logs_deliveries_and_events_only(organization, other_organization):
    """The cascade no index of `organization_id` serves on logs and deliveries (the tables
    are read once); another organization's rows stay."""
    from organizations.models import Organization

    def history(org):
        hook = webhook_create(organization=org, name="w", url="https://a.test/hook", events=["*"])
        event = trigger_event(organization=org, event="job.opened", payload={})
        delivery = Delivery.objects.get(event_id=event.pk)
        WebhookLog.objects.create(
            organization_id=org.pk, webhook=hook, delivery=delivery, event_type="job.opened", attempt=1,
            request_url=hook.url, created_at=timezone.now(),
        )  # fmt: skip
        return hook

    history(organization)
    theirs = history(other_organization)
    Organization.objects.filter(pk=organization.pk).delete()
    for model in (WebhookLog, Delivery, Event):
        assert not model.objects.filter(organization_id=organization.pk).exists()
    assert WebhookLog.objects.get().webhook_id == theirs.pk
    assert Delivery.objects.get().webhook_id == theirs.pk
    assert Event.objects.get().organization_id == other_organization.pk


# --- compaction of the days just closed (webhooks.compact_partitions) -----------------------


def _index_files(partition: str) -> dict[str, tuple[int, int]]:
    """The partition's indexes: name -> (file node, bytes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, i.relfilenode, pg_relation_size(i.oid) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
            [partition],
        )
        return {name: (node, size) for name, node, size in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
def test_the_daily_compaction_packs_the_indexes_of_the_days_just_closed_only(organization):
    from webhooks import partitions

    today = timezone.now().astimezone(UTC).date()
    partitions.ensure_partitions(today=today - timedelta(days=4), days_ahead=5)
    hook = webhook_create(organization=organization, name="w", url="https://a.test/hook", events=["*"])
    with connection.cursor() as cursor:
        for days, rows in ((0, 500), (1, 20_000), (3, 500)):  # yesterday's ids land all over its indexes
            cursor.execute(
                "INSERT INTO webhook_logs (id, organization_id, webhook_id, delivery_id, event_type, attempt,"
                " request_url, request_headers, response_status, response_body, duration_ms, error, success,"
                " created_at) SELECT gen_random_uuid(), %s, %s, gen_random_uuid(), 'job.opened', 1, %s, '{}', 200,"
                " '', 1, '', true, %s::timestamptz + i * interval '1 second' FROM generate_series(1, %s) AS i",
                [
                    organization.pk,
                    hook.pk,
                    hook.url,
                    partitions.partition_for(today - timedelta(days=days)).start,
                    rows,
                ],
            )
    name = {days: partitions.partition_for(today - timedelta(days=days)).name for days in (0, 1, 3)}
    before = {days: _index_files(name[days]) for days in (0, 1, 3)}

    rebuilt = tasks.compact_partitions()

    assert name[1] in rebuilt and name[0] not in rebuilt and name[3] not in rebuilt
    after = _index_files(name[1])
    pkey = next(index for index in after if index.endswith("pkey"))
    assert after[pkey][0] != before[1][pkey][0]  # a new file
    assert after[pkey][1] < 0.8 * before[1][pkey][1], (before[1][pkey], after[pkey])
    for days in (0, 3):  # today is still written; older days were compacted when they closed
        assert _index_files(name[days]) == before[days]
    assert WebhookLog.objects.filter(webhook=hook).count() == 21_000
    newest = WebhookLog.objects.filter(webhook=hook, created_at__lt=partitions.partition_for(today).start).first()
    assert newest is not None and newest.created_at.date() == today - timedelta(days=1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
def test_the_compaction_drops_what_a_stopped_rebuild_left_before_rebuilding():
    """A REINDEX CONCURRENTLY stopped midway leaves an invalid `*_ccnew` index that every
    write still updates: the next compaction of that day drops it."""
    from webhooks import partitions

    today = timezone.now().astimezone(UTC).date()
    partitions.ensure_partitions(today=today - timedelta(days=1), days_ahead=1)
    day = partitions.partition_for(today - timedelta(days=1)).name
    left = f"{day}_created_at_idx_ccnew"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE INDEX "{left}" ON "{day}" (created_at)')
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [f'"{left}"'])

    assert day in partitions.compact_partitions(tables=(partitions.TABLE,))

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", [f"{day}%ccnew%"])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass AND NOT indisvalid", [f'"{day}"'])
        assert cursor.fetchone()[0] == 0


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the other databases'")
def test_the_compaction_does_nothing_on_other_databases(db):
    from webhooks import partitions

    assert partitions.compact_partitions() == []
