"""Stats' pending and failed counts read the webhook's own rows only, whatever the other
webhooks' backlogs: the generic plan of their prepared statement (common/db.py) takes
`delivery_webhook_unfinished` (webhook, state, created_at) in every partition. Ordered by
`created_at` it must: without the order, PostgreSQL planned today's partition with
`delivery_due` (every pending delivery, by due time) and a filter on the webhook, so a
backlog of another webhook's pending deliveries made every stats request scan all of them
(43 ms with 166 k pending in one day, 4 ms with the order: bench/README.md)."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from webhooks import selectors
from webhooks.services import trigger_events, webhook_create

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans"),
]

BACKLOG = 4000


@pytest.fixture
def quiet_and_busy(organization, receiver):
    quiet = webhook_create(organization=organization, name="quiet", url=receiver.url, events=["job.opened"])
    busy = webhook_create(organization=organization, name="busy", url=receiver.url, events=["application.created"])
    # Pending deliveries of the busy webhook (no cluster runs here), all in today's partition.
    for first in range(0, BACKLOG, 1000):
        trigger_events(
            organization=organization,
            events=[{"event": "application.created", "payload": {"n": n}} for n in range(first, first + 1000)],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webhook_deliveries")
    return quiet, busy


def _generic_plan(webhook_id) -> str:
    sql = selectors._unfinished_counts_sql().replace("%(webhook)s", "$1").replace("%(cap)s", "$2")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE unfinished_counts (uuid, bigint) AS {sql}")
        try:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE unfinished_counts ('{webhook_id}', 10000)")
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE unfinished_counts")


def test_a_quiet_webhooks_counts_never_read_another_webhooks_backlog(quiet_and_busy):
    quiet, busy = quiet_and_busy
    plan = _generic_plan(quiet.pk)
    removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
    assert sum(removed) == 0, plan
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM webhook_deliveries WHERE webhook_id = %s", [busy.pk]
        )
        (backlog_partition,) = (row[0] for row in cursor.fetchall())
    scans = [line for line in plan.splitlines() if f" on {backlog_partition} " in line]
    assert len(scans) == 2, plan  # the pending count and the failed count
    assert all("Index Only Scan using" in line and "webhook_id_state_created_at_idx" in line for line in scans), plan
    assert selectors._unfinished_counts(quiet) == {"pending": 0, "failed": 0}
    assert selectors._unfinished_counts(busy) == {"pending": BACKLOG, "failed": 0}
