"""PostgreSQL: the engine's claim and write scan no partition of the deliveries, events or
logs whole, whatever the tables' statistics (common/db.py `plan_with_indexes`).

The test database is never analyzed (this machine's server runs without autovacuum, and
nothing here runs ANALYZE): the planner then guesses a quarter of the rows for `id = ANY(...)`
and scans the partition. Before the fix a drain of 300 deliveries made dozens of such scans,
and each claim cost more as the partitions grew."""

import pytest
from django.db import connection

from webhooks import tasks
from webhooks.models import Delivery, WebhookLog
from webhooks.services import trigger_events, webhook_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner settings are PostgreSQL's"),
]

TABLES = ("webhook_deliveries", "webhook_events", "webhook_logs")


def _sequential_scans() -> dict[str, int]:
    """Sequential scans so far of each partition of the engine's tables (this backend's
    counts flushed first)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # flushed when this statement ends
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT s.relname, s.seq_scan FROM pg_stat_user_tables s JOIN pg_inherits i ON i.inhrelid = s.relid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
            [list(TABLES)],
        )
        return dict(cursor.fetchall())


def test_a_drain_scans_no_partition_whole_without_statistics(organization, receiver):
    webhook_create(organization=organization, name="a", url=receiver.url, events=["application.created"])
    for first in range(0, 300, 100):
        trigger_events(
            organization=organization,
            events=[{"event": "application.created", "payload": {"seq": seq}} for seq in range(first, first + 100)],
        )
    before = _sequential_scans()
    assert before, "the engine's tables are partitioned"

    assert tasks.deliver_due() == 300
    receiver.wait_for(300)

    after = _sequential_scans()
    scanned = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    assert scanned == {}, scanned
    assert Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 300
    assert WebhookLog.objects.count() == 300
