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

`PreparedQuery` is for a hot ORM query: the queryset is compiled once, its values written
into the SQL as literals (so a partial index's predicate, e.g. `state = 'pending'`, stays
provable under a generic plan), and only what varies per call is a parameter: a set of
keys as one array (`AnyOf`, `= ANY(%(name)s::uuid[])`, never an IN list whose length
changes the text) and the LIMIT. Its rows are read back as the queryset would give them
(the fields' converters; model instances with their `select_related` ones).
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import BooleanField, F, Func, QuerySet
from django.db.models.query import ModelIterable, get_related_populators  # type: ignore[attr-defined]


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


_STALE_PLAN = "cached plan must not change result type"


@functools.cache
def _cursor_class():
    import psycopg
    from psycopg import pq

    class Cursor(psycopg.Cursor):
        """Runs a statement again, unprepared, when another connection changed the result
        type of the prepared one (a migration altering a selected column while this process
        keeps its connection): PostgreSQL would otherwise fail every later execution of it
        on this connection. Only outside a transaction: in one, the statement's failure
        aborts it, and the rollback makes psycopg drop its prepared statements."""

        def execute(self, query, params=None, **kwargs):
            try:
                return super().execute(query, params, **kwargs)
            except psycopg.errors.FeatureNotSupported as error:
                idle = self.connection.info.transaction_status == pq.TransactionStatus.IDLE
                if not idle or _STALE_PLAN not in str(error):
                    raise
                # psycopg 3.3 (pinned) has no public call for this: forget every prepared
                # statement; DEALLOCATE ALL follows the next execution.
                self.connection._prepared.clear()
                return super().execute(query, params, **kwargs)

    return Cursor


@contextmanager
def prepared_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator:
    """A cursor whose statements psycopg prepares once per connection (see the module)."""
    conn = connections[using]
    if not prepared_statements_enabled(using):
        with conn.cursor() as cursor:
            yield cursor
        return
    # `conn.cursor()` connects (and runs the health check) as for any query; the raw cursor
    # then shares that psycopg connection, its adapters and its transaction.
    with conn.cursor():
        raw = _cursor_class()(conn.connection)
        conn.validate_thread_sharing()
        wrapped = _DebugCursor(raw, conn) if conn.queries_logged else CursorWrapper(raw, conn)
        try:
            yield wrapped
        finally:
            raw.close()


def plan_with_indexes(*, synchronous_commit: bool = True, using: str = DEFAULT_DB_ALIAS) -> None:
    """For the rest of the current transaction (PostgreSQL; a no-op elsewhere or outside
    one): the planner uses no sequential scan where an index serves, a prepared statement
    runs its generic plan (planned once, as `PreparedQuery` texts are written for), and, with
    `synchronous_commit=False`, the commit does not wait for the WAL flush. One statement.

    For a transaction whose statements are all index lookups by design (the delivery
    engine's claim and write). PostgreSQL plans from the tables' statistics, and a statement
    prepared while its tables were small keeps its generic plan: a new day's partition, a
    new install, or a server whose autovacuum (which runs ANALYZE) is off or behind, left
    the engine's UPDATEs by id and its claim's join to the events scanning whole partitions
    (the planner's default guess for `id = ANY(...)` without statistics is a quarter of the
    rows), so each claim cost more as the tables grew. With sequential scans off the same
    statements are index lookups whatever the statistics. The generic plan is then kept even
    where its estimate (ten ids for any `= ANY($1)`) costs more than a plan for the actual
    few ids would: planning again on every call costs more than that difference. `SET
    LOCAL`: nothing outlives the transaction, and a statement prepared here was planned here."""
    conn = connections[using]
    if conn.vendor != "postgresql" or not conn.in_atomic_block:
        return
    settings = "set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)"
    if not synchronous_commit:
        settings += ", set_config('synchronous_commit', 'off', true)"
    with conn.cursor() as cursor:
        cursor.execute(f"SELECT {settings}")


def array_literal(values: Iterable[uuid.UUID | datetime]) -> str:
    """An array parameter written as PostgreSQL's text literal (`{a,b}`), for a statement that
    casts it (`%s::uuid[]`, `%s::timestamptz[]`). psycopg's list dumper adapts each element
    in Python: 0.3 ms of CPU for the 41 ids and 41 times of a logs page's payload read
    (webhooks/masking.py), against 0.02 ms for their text. Only for elements whose text needs
    no quoting in an array literal: UUIDs, and aware datetimes (ISO 8601, offset kept)."""
    texts = []
    for value in values:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{value!r} has no time zone")
            texts.append(value.isoformat())
        elif isinstance(value, uuid.UUID):
            texts.append(str(value))
        else:
            raise TypeError(f"{value!r} is neither a UUID nor a datetime")
    return "{" + ",".join(texts) + "}"


# --- ORM queries compiled once -------------------------------------------------------------


class _Named:
    """A parameter left in a compiled query's SQL as `%(name)s`."""

    def __init__(self, name: str):
        self.name = name


class AnyOf(Func):
    """`column = ANY(%(name)s::<type>[])` (or its negation): membership in a set given per
    call as one array parameter of a `PreparedQuery`, so the SQL is the same for any size."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, column: str, name: str, *, negated: bool = False):
        super().__init__(F(column))
        self.name, self.negated = name, negated

    def as_sql(self, compiler, connection, **extra):  # type: ignore[override]
        (column,) = self.get_source_expressions()
        sql, params = compiler.compile(column)
        test = f"{sql} = ANY(%s::{column.output_field.db_type(connection)}[])"
        return (f"NOT ({test})" if self.negated else test), [*params, _Named(self.name)]


_PLACEHOLDER = re.compile(r"%%|%s")
#: the LIMIT a `PreparedQuery` is compiled with, then made its `limit` parameter
_LIMIT = 2_147_483_647


class PreparedQuery:
    """A queryset compiled once for `prepared_cursor` (see the module). Compile it where the
    queryset could run (a `select_for_update` one inside a transaction)."""

    def __init__(self, queryset: QuerySet, *, limit: bool = False):
        if limit:
            queryset = queryset[:_LIMIT]
        self.using = queryset.db
        connection = connections[self.using]
        compiler = queryset.query.get_compiler(self.using)
        sql, params = compiler.as_sql()
        values = iter(params)

        def bind(match: re.Match) -> str:
            if match.group() == "%%":
                return "%%"
            value = next(values)
            if isinstance(value, _Named):
                return f"%({value.name})s"
            return connection.ops.compose_sql("%s", [value]).replace("%", "%%")  # type: ignore[attr-defined]

        sql = _PLACEHOLDER.sub(bind, sql)
        if limit:
            assert sql.count(f"LIMIT {_LIMIT}") == 1, sql
            sql = sql.replace(f"LIMIT {_LIMIT}", "LIMIT %(limit)s")
        self.sql, self.compiler = sql, compiler
        self.instances_of = queryset._iterable_class is ModelIterable
        if self.instances_of:
            klass_info, select = compiler.klass_info, compiler.select
            self.model = klass_info["model"]
            fields = klass_info["select_fields"]
            self.model_columns = slice(fields[0], fields[-1] + 1)
            self.init_list = [column[0].target.attname for column in select[self.model_columns]]
            self.populators = get_related_populators(klass_info, select, self.using)

    def rows(self, **params: Any) -> list:
        """The rows, converted as `values_list()` gives them; model instances for a queryset of
        instances (`ModelIterable`: its `select_related` ones populated, no annotations)."""
        with prepared_cursor(self.using) as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        converted = self.compiler.results_iter(results=[fetched], tuple_expected=True)
        if not self.instances_of:
            return list(converted)
        instances = []
        for row in converted:
            instance = self.model.from_db(self.using, self.init_list, row[self.model_columns])
            for populator in self.populators:
                populator.populate(row, instance)
            instances.append(instance)
        return instances
