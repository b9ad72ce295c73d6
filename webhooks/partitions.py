"""Daily time partitions of `webhook_logs` on PostgreSQL (docs/RELIABILITY.md, "Retention").

`webhook_logs` is `PARTITION BY RANGE (created_at)`: one partition a UTC day, named
`webhook_logs_pYYYYMMDD`, plus `webhook_logs_default`, so an insert never fails when the
schedule has not created a day yet. The schedule `webhooks.create_partitions` creates
`PARTITION_DAYS_AHEAD` days ahead; pruning detaches and drops whole days older than the
retention (O(1), disk returned at once) and batch-deletes only the boundary day.

Only the logs are partitioned: deliveries and events are the *targets* of foreign keys
(logs → deliveries, deliveries → events), and a partitioned table's unique keys must
include the partition key, so a foreign key to them would need `created_at` in every
referencing row. They stay plain tables, pruned in batches driven by their indexes.

On other databases (SQLite) every function here is a no-op.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

TABLE = "webhook_logs"
DEFAULT = f"{TABLE}_default"
PARTITION_DAYS_AHEAD = 7
_NAME = re.compile(rf"^{TABLE}_p(\d{{8}})$")


@dataclass(frozen=True)
class Partition:
    name: str
    day: dt.date

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.day.year, self.day.month, self.day.day, tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=1)


def partition_for(day: dt.date) -> Partition:
    return Partition(f"{TABLE}_p{day:%Y%m%d}", day)


def supported(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


def is_partitioned(conn=None) -> bool:
    conn = conn or connection
    if not supported(conn):
        return False
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [TABLE],
        )
        return cursor.fetchone() is not None


def partitions(conn=None) -> list[Partition]:
    """The daily partitions attached to `webhook_logs`, oldest first (the default excluded)."""
    conn = conn or connection
    if not is_partitioned(conn):
        return []
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.match(name)
        if match:
            found.append(Partition(name, dt.datetime.strptime(match.group(1), "%Y%m%d").date()))
    return sorted(found, key=lambda p: p.day)


def _create(cursor, partition: Partition) -> None:
    """Create and attach one day. Rows of that day already in the default partition are
    moved into it first (an attach would otherwise fail on them)."""
    start, end = partition.start.isoformat(), partition.end.isoformat()
    cursor.execute(f'LOCK TABLE "{DEFAULT}" IN ACCESS EXCLUSIVE MODE')
    cursor.execute(f'CREATE TABLE "{partition.name}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{DEFAULT}" WHERE created_at >= %s AND created_at < %s RETURNING *) '  # noqa: S608 - identifiers are this module's constants
        f'INSERT INTO "{partition.name}" SELECT * FROM moved',
        [start, end],
    )
    cursor.execute(
        f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{partition.name}" FOR VALUES FROM (%s) TO (%s)', [start, end]
    )


def ensure_partitions(*, days_ahead: int = PARTITION_DAYS_AHEAD, today: dt.date | None = None, conn=None) -> list[str]:
    """Create the daily partitions from today to `days_ahead` days ahead that are missing.
    Idempotent; returns the names created."""
    conn = conn or connection
    if not is_partitioned(conn):
        return []
    today = today or timezone.now().astimezone(dt.UTC).date()
    existing = {p.day for p in partitions(conn)}
    created = []
    for offset in range(days_ahead + 1):
        day = today + dt.timedelta(days=offset)
        if day in existing:
            continue
        partition = partition_for(day)
        with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
            _create(cursor, partition)
        created.append(partition.name)
    return created


def _count(cursor, name: str) -> int:
    cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 - identifiers are this module's constants
    return int(cursor.fetchone()[0])


def drop_partitions_before(cutoff: dt.datetime, *, dry_run: bool = False, conn=None) -> tuple[list[str], int]:
    """Detach and drop every daily partition whose whole day is older than `cutoff`.
    Returns (names, rows they held). `dry_run` only counts."""
    conn = conn or connection
    dropped, rows = [], 0
    for partition in partitions(conn):
        if partition.end > cutoff:
            continue
        with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
            rows += _count(cursor, partition.name)
            if not dry_run:
                # Deferred foreign-key checks of this transaction's own writes must run
                # before the table goes (Django's constraints are INITIALLY DEFERRED).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f'ALTER TABLE "{TABLE}" DETACH PARTITION "{partition.name}"')
                cursor.execute(f'DROP TABLE "{partition.name}"')
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        dropped.append(partition.name)
    return dropped, rows


# --- the migration (webhooks 0007) -------------------------------------------------------


def _indexes_and_fks(cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary",
        [table],
    )
    indexes = list(cursor.fetchall())
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [table],
    )
    return indexes, list(cursor.fetchall())


def convert(schema_editor, *, partitioned: bool, batch_days: int = 1) -> None:
    """Rebuild `webhook_logs` as a partitioned table (or back as a plain one), keeping its
    name, columns, indexes (same names), check and foreign-key constraints, and every row:
    rename the old table, create the new one, copy a day at a time, drop the old one."""
    conn = schema_editor.connection
    if not supported(conn) or is_partitioned(conn) == partitioned:
        return
    old = f"{TABLE}_old"
    with conn.cursor() as cursor:
        indexes, fks = _indexes_and_fks(cursor, TABLE)
        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{old}"')
        cursor.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{TABLE}_pkey" TO "{old}_pkey"')
        for name, _ in indexes:
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:55]}_old"')
        for name, _ in fks:
            cursor.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{name}" TO "{name[:55]}_old"')
        suffix = " PARTITION BY RANGE (created_at)" if partitioned else ""
        key = "(id, created_at)" if partitioned else "(id)"
        cursor.execute(f'CREATE TABLE "{TABLE}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS){suffix}')
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY {key}')
        for _, definition in indexes:
            cursor.execute(re.sub(rf' ON (ONLY )?(\S+\.)?"?{old}"? ', f' ON "{TABLE}" ', definition, count=1))
        for name, definition in fks:
            cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')
        days: list[dt.date] = []
        if partitioned:
            cursor.execute(f'CREATE TABLE "{DEFAULT}" PARTITION OF "{TABLE}" DEFAULT')
            cursor.execute(f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM \"{old}\" ORDER BY 1")  # noqa: S608 - identifiers are this module's constants
            days = [row[0] for row in cursor.fetchall()]
            for day in days:
                partition = partition_for(day)
                cursor.execute(
                    f'CREATE TABLE "{partition.name}" PARTITION OF "{TABLE}" FOR VALUES FROM (%s) TO (%s)',
                    [partition.start.isoformat(), partition.end.isoformat()],
                )
            for day in days:
                partition = partition_for(day)
                cursor.execute(
                    f'INSERT INTO "{TABLE}" SELECT * FROM "{old}" WHERE created_at >= %s AND created_at < %s',  # noqa: S608 - identifiers are this module's constants
                    [partition.start.isoformat(), partition.end.isoformat()],
                )
        else:
            cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{old}"')  # noqa: S608 - identifiers are this module's constants
        cursor.execute(f'DROP TABLE "{old}"')
    if partitioned:
        ensure_partitions(conn=conn)
