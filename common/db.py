"""Prepared statements for the hot raw statements on PostgreSQL.

Django's psycopg backend binds parameters on the client (`ClientCursor`): every execution
sends the values quoted into the text, so PostgreSQL parses and plans each one anew. For
most queries planning is cheap, but a statement over the daily-partitioned tables
(webhook_events, webhook_deliveries, webhook_logs: webhooks/partitions.py) is planned
against every partition and each of its indexes: about 2 ms with 9 partitions for a count
of a webhook's pending deliveries that runs in 0.3 ms, and more as partitions accumulate.

`prepared_cursor()` gives a cursor that binds on the server (`psycopg.Cursor`). psycopg
prepares a statement the `prepare_threshold`-th time one connection executes its text
(settings: `DATABASE_PREPARED_STATEMENTS`, on by default on PostgreSQL), and PostgreSQL
then keeps a generic plan once it is as cheap as the custom ones (after 5 executions):
the planning is paid once per connection, not per call. Parameters travel typed, so the
statements routed here cast what the server cannot infer (`%s::jsonb`, `%s::uuid[]`).

The cursor is wrapped like Django's own (execute wrappers, `connection.queries` and
`CaptureQueriesContext` see its statements). Elsewhere, and with the setting off (a
PgBouncer in transaction mode cannot keep prepared statements), it is `connection.cursor()`.
The ORM's own queries keep client-side binding: Django does not promise that every query
it builds can be prepared (Django ticket #20516).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


class _DebugCursor(CursorDebugWrapper):
    """Records each statement with its values merged in, as Django's client-binding
    cursors do (its `last_executed_query` would give the `$1` text sent to the server)."""

    def execute(self, sql, params=None):
        recorded = sql if params is None else self.db.ops.compose_sql(sql, params)
        with self.debug_sql(recorded):
            return CursorWrapper.execute(self, sql, params)


def prepared_statements_enabled(using: str = DEFAULT_DB_ALIAS) -> bool:
    conn = connections[using]
    return conn.vendor == "postgresql" and conn.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None


@contextmanager
def prepared_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator:
    """A cursor whose statements psycopg prepares once per connection (see the module)."""
    conn = connections[using]
    if not prepared_statements_enabled(using):
        with conn.cursor() as cursor:
            yield cursor
        return
    import psycopg

    # `conn.cursor()` connects (and runs the health check) as for any query; the raw cursor
    # then shares that psycopg connection, its adapters and its transaction.
    with conn.cursor():
        raw = psycopg.Cursor(conn.connection)
        conn.validate_thread_sharing()
        # django-stubs type make_cursor's argument as the wrapper; Django passes it the raw cursor.
        wrapped = _DebugCursor(raw, conn) if conn.queries_logged else conn.make_cursor(raw)  # type: ignore[arg-type]
        try:
            yield wrapped
        finally:
            raw.close()
