"""The API's hot reads on PostgreSQL are prepared (common/db.py `prepared_cursor`) and, with
the steady state's ~38 daily partitions, PostgreSQL keeps their generic plans (planned once
per connection) instead of planning every call against each partition; the answers are
those of the client-binding path (`DATABASE_PREPARED_STATEMENTS` off)."""

from __future__ import annotations

import io
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from common.api.pagination import CursorPagination
from organizations.models import Organization
from tests.conftest import make_key_client
from webhooks import partitions
from webhooks.models import WebhookLog

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements and partitions are PostgreSQL's"),
]

BASE = "/api/integrations/webhooks/"
#: requests per statement: psycopg prepares on the 5th, PostgreSQL plans the first 5
#: executions of a prepared statement with their values, then compares with the generic plan
CALLS = 20
LOGS = 3_000


@pytest.fixture
def bench():
    """What bench/api.py measures, smaller: `load_bench_data` (30 days of history, 10
    webhooks, one with 89% of the rows, with partitions for each day loaded and 7 ahead:
    38 daily partitions of each partitioned table, as with 30 days' retention), and a key."""
    out = io.StringIO()
    call_command("load_bench_data", "--logs", str(LOGS), "--organization", "prep", stdout=out)
    assert len(partitions.partitions(table=partitions.LOGS)) >= 38
    assert len(partitions.partitions(table=partitions.DELIVERIES)) >= 38
    big = next(line.split()[1] for line in out.getvalue().splitlines() if line.startswith("webhook "))
    return make_key_client(Organization.objects.get(slug="prep")), big


def _plans(fragment: str) -> dict[str, tuple[int, int]]:
    """generic and custom plans of this session's prepared statements whose text has `fragment`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"%{fragment}%"],
        )
        return {statement: (generic, custom) for statement, generic, custom in cursor.fetchall()}


def _generic_after(fragment: str, call) -> dict[str, tuple[int, int]]:
    """Each statement with `fragment` run by `CALLS` calls: (generic, custom) plans of those calls."""
    before = _plans(fragment)
    for _ in range(CALLS):
        call()
    after = _plans(fragment)
    assert after, f"no prepared statement reads {fragment}"
    return {
        statement: (generic - before.get(statement, (0, 0))[0], custom - before.get(statement, (0, 0))[1])
        for statement, (generic, custom) in after.items()
    }


def _assert_generic(plans: dict[str, tuple[int, int]]) -> None:
    """One statement, run on generic plans after at most 5 executions before psycopg
    prepared it and 5 custom plans."""
    ((generic, custom),) = plans.values()
    assert generic >= CALLS - 10, plans
    assert custom <= 5, plans


def _cursor_at(webhook_id: str, fraction: float) -> str:
    rows = WebhookLog.objects.filter(webhook_id=webhook_id).order_by("-created_at", "-id")
    row = rows.values("created_at", "id")[int(rows.count() * fraction)]
    return CursorPagination.encode(row["created_at"], row["id"])


def _get(client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def _client_binding(monkeypatch) -> None:
    """DATABASE_PREPARED_STATEMENTS off: the statements go through Django's client-binding cursor."""
    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "prepare_threshold")


def test_logs_page_one_and_cursor_pages_keep_generic_plans_over_38_partitions(bench):
    api_client, big = bench
    logs = f"{BASE}{big}/logs/"
    deep = f"{logs}?cursor={_cursor_at(big, 0.8)}"  # 80% down the history, as bench/api.py

    page_one = _generic_after('FROM "webhook_logs" WHERE webhook_id = $1 ORDER BY', lambda: _get(api_client, logs))
    cursor = _generic_after("created_at <= ($2::timestamptz + interval '0')", lambda: _get(api_client, deep))
    for plans in (page_one, cursor):
        _assert_generic(plans)


def test_the_payloads_a_logs_page_masks_with_are_read_by_a_generic_plan(bench):
    api_client, big = bench
    logs = f"{BASE}{big}/logs/"
    # The lookup near each attempt finds every payload here (the loader gives a delivery its
    # event's created_at, as the trigger statements do): the one by id alone never runs.
    plans = _generic_after("AS wanted(id, logged_at)", lambda: _get(api_client, logs))
    assert _plans("AS wanted(id) ") == {}
    _assert_generic(plans)


def test_stats_keep_generic_plans_over_38_partitions(bench):
    api_client, big = bench
    stats = f"{BASE}{big}/stats/"
    counts = _generic_after('FROM "webhook_deliveries" WHERE "webhook_id" = $1', lambda: _get(api_client, stats))
    rollups = _generic_after('FROM "webhook_hourly_stats"', lambda: _get(api_client, stats))
    for plans in (counts, rollups):
        _assert_generic(plans)


def test_the_api_key_lookup_is_prepared(bench):
    api_client, _ = bench
    plans = _generic_after('FROM "organizations_apikey"', lambda: _get(api_client, BASE))
    ((generic, custom),) = plans.values()
    assert generic + custom >= CALLS - 5, plans


def test_prepared_answers_equal_the_client_binding_ones(bench, monkeypatch):
    api_client, big = bench
    paths = [f"{BASE}{big}/stats/", f"{BASE}{big}/stats/?window=30d"]
    queries = ("", "?success=false", f"?since={_day_ago(20)}", f"?cursor={_cursor_at(big, 0.8)}")
    for query in queries:
        path = f"{BASE}{big}/logs/{query}"
        for _ in range(4):  # the first page and up to 3 after it, by their `next`
            paths.append(path)
            following = _get(api_client, path)["next"]
            if following is None:
                break
            path = following.split("testserver", 1)[-1]
    prepared = [[_get(api_client, path) for path in paths] for _ in range(8)]  # past the 5 custom plans
    assert all(answers == prepared[0] for answers in prepared)
    _client_binding(monkeypatch)
    assert [_get(api_client, path) for path in paths] == prepared[0]
    assert any(page["results"] for page in prepared[0] if "results" in page)


def _day_ago(days: int) -> str:
    return (timezone.now() - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
