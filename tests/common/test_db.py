"""`common.db.prepared_cursor`: on PostgreSQL its statements are prepared once per
connection and then run on a generic plan (no planning per call); Django's query capture
and execute wrappers still see them; with DATABASE_PREPARED_STATEMENTS off, and on SQLite,
it is Django's own cursor and nothing is prepared."""

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import NotSupportedError, connection, transaction
from django.test.utils import CaptureQueriesContext

from common.db import array_literal, prepared_cursor, prepared_statements_enabled
from tests.common.test_settings import clean_env
from webhooks.selectors import _unfinished_counts_sql

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")

STATEMENT = "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s AND state = 'pending'"


def _prepared(fragment: str) -> list[tuple[int, int]]:
    """(generic_plans, custom_plans) of this connection's prepared statements containing `fragment`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"%{fragment}%"],
        )
        return cursor.fetchall()


def _run(times: int, statement: str = STATEMENT) -> list:
    answers = []
    for _ in range(times):
        with prepared_cursor() as cursor:
            cursor.execute(statement, [uuid.uuid4()])
            answers.append(cursor.fetchone())
    return answers


@postgres_only
def test_a_statement_run_repeatedly_is_prepared_once_and_then_runs_on_a_generic_plan():
    assert prepared_statements_enabled()
    answers = _run(4)
    assert _prepared("webhook_deliveries WHERE webhook_id = $1") == []  # not before psycopg's 5th run
    answers += _run(11)
    assert answers == [(0,)] * 15
    ((generic, custom),) = _prepared("webhook_deliveries WHERE webhook_id = $1")
    # PostgreSQL builds custom plans for the first five executions of a prepared statement,
    # then keeps the generic one: no more planning per call.
    assert generic >= 5, (generic, custom)
    assert custom <= 5


@postgres_only
def test_the_statements_are_seen_by_query_capture_with_their_values_and_by_execute_wrappers():
    webhook_id = uuid.uuid4()
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(wrapper):
        with prepared_cursor() as cursor:
            cursor.execute(STATEMENT, [webhook_id])
    assert seen == [STATEMENT]
    assert captured.captured_queries[-1]["sql"] == STATEMENT.replace("%s", f"'{webhook_id.hex}'::uuid")


@postgres_only
def test_with_the_setting_off_it_is_djangos_cursor_and_nothing_is_prepared(monkeypatch):
    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "prepare_threshold")
    assert not prepared_statements_enabled()
    _run(12, STATEMENT + " AND true")
    assert _prepared("state = 'pending' AND true") == []


@postgres_only
def test_the_stats_counts_keep_the_partial_index_on_a_generic_plan():
    """The states are literals in the statement, so a generic plan still proves the
    condition of `delivery_webhook_unfinished` (with `state = $n` it could not)."""
    sql = _unfinished_counts_sql().replace("%(webhook)s", "$1").replace("%(cap)s", "$2")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"PREPARE unfinished_counts (uuid, bigint) AS {sql}")
        try:
            cursor.execute(f"EXPLAIN EXECUTE unfinished_counts ('{uuid.uuid4()}', 10000)")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE unfinished_counts")
    # Each partition's copy of an index is named after its columns: the partial indexes whose
    # condition names the state are `delivery_webhook_unfinished` (webhook_id, state,
    # created_at), `delivery_due` / `delivery_due_first` (next_attempt_at, pending) and
    # `delivery_finished_at` (finished_at, succeeded or failed).
    partial = ("webhook_id_state_created_at_idx", "next_attempt_at_idx", "finished_at_idx")
    scans = [line for line in plan.splitlines() if " Scan " in line]
    assert len(scans) > 2, plan
    assert all(any(name in line for name in partial) for line in scans), plan


def test_on_sqlite_or_off_it_answers_as_djangos_cursor():
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s, %s", [1, "a"])
        assert cursor.fetchone() == (1, "a")


@pytest.mark.parametrize(("value", "expected"), [(None, 5), ("true", 5), ("false", None)])
def test_the_setting_sets_psycopgs_prepare_threshold_on_postgresql(value, expected):
    env = clean_env(DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL="postgres://root@127.0.0.1:5432/unused")
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_prepared_select_still_answers_after_another_connection_changes_a_selected_columns_type():
    """A migration run while a process keeps its connection (an `AlterField` widening a
    varchar, from the migrating process) changes the result type of that process's prepared
    statements: PostgreSQL then fails each execution ("cached plan must not change result
    type") for as long as the connection lives. Outside a transaction the statement is run
    again unprepared once psycopg's prepared statements are dropped; the row is the same."""
    import psycopg

    params = connection.get_connection_params()
    other = psycopg.connect(
        autocommit=True, **{k: params[k] for k in ("dbname", "user", "host", "port", "password") if params.get(k)}
    )
    statement = "SELECT id, name FROM review_stale_plan WHERE id = %s"
    try:
        other.execute("CREATE TABLE review_stale_plan (id integer PRIMARY KEY, name varchar(10))")
        other.execute("INSERT INTO review_stale_plan VALUES (1, 'a')")
        for _ in range(6):
            with prepared_cursor() as cursor:
                cursor.execute(statement, [1])
                assert cursor.fetchall() == [(1, "a")]
        assert _prepared("FROM review_stale_plan") != []
        other.execute("ALTER TABLE review_stale_plan ALTER COLUMN name TYPE varchar(20)")
        for _ in range(12):  # and again once prepared anew
            with prepared_cursor() as cursor:
                cursor.execute(statement, [1])
                assert cursor.fetchall() == [(1, "a")]
        assert _prepared("FROM review_stale_plan") != []
        # In a transaction the failure aborts it (not retried); its rollback drops psycopg's
        # prepared statements, so the next execution answers.
        other.execute("ALTER TABLE review_stale_plan ALTER COLUMN name TYPE varchar(30)")
        with pytest.raises(NotSupportedError), transaction.atomic(), prepared_cursor() as cursor:
            cursor.execute(statement, [1])
        with prepared_cursor() as cursor:
            cursor.execute(statement, [1])
            assert cursor.fetchall() == [(1, "a")]
    finally:
        other.execute("DROP TABLE IF EXISTS review_stale_plan")
        other.close()


@postgres_only
@pytest.mark.parametrize("prepared", [True, False])
def test_an_array_literal_reads_back_as_the_values_it_was_written_from(prepared, monkeypatch):
    if not prepared:
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "prepare_threshold", None)
    ids = [uuid.uuid4(), uuid.uuid4()]
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(2026, 6, 1, tzinfo=timezone(timedelta(hours=-3))),
    ]
    with prepared_cursor() as cursor:
        cursor.execute(
            "SELECT i, t FROM unnest(%s::uuid[], %s::timestamptz[]) AS x(i, t)",
            [array_literal(ids), array_literal(moments)],
        )
        assert cursor.fetchall() == list(zip(ids, moments, strict=True))
        cursor.execute("SELECT cardinality(%s::uuid[])", [array_literal([])])
        assert cursor.fetchone() == (0,)


def test_an_array_literal_takes_only_uuids_and_aware_datetimes():
    assert array_literal(iter([uuid.UUID(int=1)])) == "{00000000-0000-0000-0000-000000000001}"
    with pytest.raises(ValueError, match="no time zone"):
        array_literal([datetime(2026, 1, 2)])
    with pytest.raises(TypeError):
        array_literal(["a,b}"])  # type: ignore[list-item]
