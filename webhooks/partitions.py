"""Daily time partitions of `webhook_logs`, `webhook_deliveries` and `webhook_events` on
PostgreSQL (docs/RELIABILITY.md, "Retention at scale").

Each table is `PARTITION BY RANGE (created_at)`: one partition a UTC day, named
`<table>_pYYYYMMDD`, plus `<table>_default`, so an insert never fails when the schedule has
not created a day yet. The schedule `webhooks.create_partitions` creates
`PARTITION_DAYS_AHEAD` days ahead for the three tables; `webhooks.compact_partitions`
rebuilds the indexes of the days just closed, packed (`compact_partitions`); pruning (webhooks/services/retention.py)
detaches and drops whole days older than the retention (O(1), disk returned at once): a
day's rows that must stay (a delivery still pending, an event a kept delivery refers to)
are moved into the default partition first, and only the boundary day and the default
partition are deleted in batches.

A partitioned table's unique keys must include the partition key, so on PostgreSQL:
- the primary keys are `(id, created_at)` (ids are UUIDs; the ORM keeps `id` as its key);
- `unique_delivery_per_webhook` is `(event_id, webhook_id, created_at)` (one trigger
  statement writes an event's deliveries with its `created_at`, so it still holds one
  delivery per event and webhook);
- an event's idempotency key is held by `webhook_event_keys` (a plain table, unique on
  `(organization_id, idempotency_key)`), which the trigger statement inserts into with
  `ON CONFLICT`; `unique_event_idempotency_key` on the events is a plain index there;
- nothing refers to a partitioned table by foreign key: logs -> deliveries and deliveries
  -> events are not database constraints (`db_constraint=False`); the ORM's cascades still
  run, and retention and erasure delete in that order (logs, deliveries, events).

On other databases (SQLite) every function here is a no-op.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

LOGS, DELIVERIES, EVENTS = "webhook_logs", "webhook_deliveries", "webhook_events"
#: Partitioned on PostgreSQL, in the order pruning goes (nothing refers to a log; logs refer
#: to deliveries, deliveries to events).
TABLES = (LOGS, DELIVERIES, EVENTS)
#: The logs' (kept for callers that knew only the logs)
TABLE = LOGS
DEFAULT = f"{TABLE}_default"
#: Holds the events' idempotency keys on PostgreSQL (see the module's docstring).
EVENT_KEYS = "webhook_event_keys"
PARTITION_DAYS_AHEAD = 7
#: Closed days the daily `webhooks.compact_partitions` rebuilds the indexes of (the day that
#: closed since its last run, and the one before in case a run was missed).
COMPACT_DAYS_BACK = 2


def default_of(table: str) -> str:
    return f"{table}_default"


def _name_pattern(table: str) -> re.Pattern[str]:
    return re.compile(rf"^{table}_p(\d{{8}})$")


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


def partition_for(day: dt.date, table: str = TABLE) -> Partition:
    return Partition(f"{table}_p{day:%Y%m%d}", day)


def supported(conn=None) -> bool:
    return (conn or connection).vendor == "postgresql"


def is_partitioned(conn=None, table: str = TABLE) -> bool:
    conn = conn or connection
    if not supported(conn):
        return False
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [table],
        )
        return cursor.fetchone() is not None


def partitions(conn=None, table: str = TABLE) -> list[Partition]:
    """The daily partitions attached to `table`, oldest first (the default excluded)."""
    conn = conn or connection
    if not is_partitioned(conn, table):
        return []
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    pattern = _name_pattern(table)
    for name in names:
        match = pattern.match(name)
        if match:
            found.append(Partition(name, dt.datetime.strptime(match.group(1), "%Y%m%d").date()))
    return sorted(found, key=lambda p: p.day)


#: a day starting later than this from now gets its partition by the constraint path of
#: `_create` (no row can be written for it meanwhile); an earlier one by the moving path
FUTURE_MARGIN = dt.timedelta(hours=1)


def _create(conn, partition: Partition, table: str) -> None:
    """Create and attach one day.

    A day in the future (the schedule's days ahead): attaching would scan the whole default
    partition under an ACCESS EXCLUSIVE lock on it (which every statement on the table that
    does not prune by day waits for) to prove none of its rows is of that day. Instead a
    CHECK constraint excluding the day is added to the default `NOT VALID` (catalog only),
    validated under SHARE UPDATE EXCLUSIVE (the same scan, but reads and writes go on),
    and the attach then skips the scan (PostgreSQL: the constraint implies it) and drops
    the constraint: the ACCESS EXCLUSIVE locks last for catalog changes only.

    A day already begun or past, or one whose rows are in the default partition (the
    validation fails): its rows are moved from the default into the new partition under
    that lock, then it is attached (the attach would otherwise fail on them)."""
    start, end = partition.start.isoformat(), partition.end.isoformat()
    default = default_of(table)
    check = f"{default}_not_{partition.day:%Y%m%d}"
    if partition.start > timezone.now() + FUTURE_MARGIN:
        with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
            # Deferred foreign-key checks of this transaction's writes must run before the
            # table is altered (as in `_attach`); deferred again after each step.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f'ALTER TABLE "{default}" DROP CONSTRAINT IF EXISTS "{check}"')
            cursor.execute(
                f'ALTER TABLE "{default}" ADD CONSTRAINT "{check}" '
                "CHECK (created_at < %s OR created_at >= %s) NOT VALID",
                [start, end],
            )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        try:
            try:
                with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    cursor.execute(f'ALTER TABLE "{default}" VALIDATE CONSTRAINT "{check}"')
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                validated = True
            except IntegrityError:  # rows of that day in the default partition: they move
                validated = False
            with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
                if validated:
                    cursor.execute(
                        f'CREATE TABLE "{partition.name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
                    )
                    _attach(cursor, partition, table)
                _drop_check(cursor, default, check)
        except BaseException:
            # Left in place, the constraint would make every write of that day fail once
            # the day comes (no partition of its own, and the default refusing it).
            with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
                _drop_check(cursor, default, check)
            raise
        if validated:
            return
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{default}" IN ACCESS EXCLUSIVE MODE')
        cursor.execute(f'CREATE TABLE "{partition.name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{default}" WHERE created_at >= %s AND created_at < %s RETURNING *) '  # noqa: S608 - identifiers are this module's constants
            f'INSERT INTO "{partition.name}" SELECT * FROM moved',
            [start, end],
        )
        _attach(cursor, partition, table)


def _drop_check(cursor, default: str, check: str) -> None:
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(f'ALTER TABLE "{default}" DROP CONSTRAINT IF EXISTS "{check}"')
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _attach(cursor, partition: Partition, table: str) -> None:
    # Deferred foreign-key checks of this transaction's writes to the table must run before
    # it is altered (Django's constraints are INITIALLY DEFERRED).
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(
        f'ALTER TABLE "{table}" ATTACH PARTITION "{partition.name}" FOR VALUES FROM (%s) TO (%s)',
        [partition.start.isoformat(), partition.end.isoformat()],
    )
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def ensure_partitions(
    *,
    days_ahead: int = PARTITION_DAYS_AHEAD,
    today: dt.date | None = None,
    conn=None,
    tables: tuple[str, ...] = TABLES,
) -> list[str]:
    """Create the daily partitions from today to `days_ahead` days ahead that are missing,
    for each partitioned table of `tables`. Idempotent; returns the names created."""
    conn = conn or connection
    today = today or timezone.now().astimezone(dt.UTC).date()
    created = []
    for table in tables:
        if not is_partitioned(conn, table):
            continue
        existing = {p.day for p in partitions(conn, table)}
        for offset in range(days_ahead + 1):
            day = today + dt.timedelta(days=offset)
            if day in existing:
                continue
            partition = partition_for(day, table)
            _create(conn, partition, table)
            created.append(partition.name)
    return created


def compact_partitions(
    *,
    days_back: int = COMPACT_DAYS_BACK,
    today: dt.date | None = None,
    conn=None,
    tables: tuple[str, ...] = TABLES,
) -> list[str]:
    """Rebuild, packed, the indexes of the daily partitions of the `days_back` days before
    today (days closed). While its day is written, a partition's indexes led by a webhook,
    an event or a random id take each new row inside the index, where a full page splits in
    halves: they end about 1.5 times their packed size (bench/storage.py). A closed day takes
    few rows after (rows go to the day of their `created_at`; a retried delivery is updated),
    so its rebuilt indexes stay packed. `REINDEX TABLE CONCURRENTLY`: reads and writes of the
    partition go on meanwhile (it cannot run inside a transaction). Returns the partitions
    rebuilt; no-op on other databases."""
    conn = conn or connection
    today = today or timezone.now().astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days_back)
    rebuilt = []
    for table in tables:
        for partition in partitions(conn, table):
            if first <= partition.day < today:
                with conn.cursor() as cursor:
                    for index in _failed_rebuilds(cursor, partition.name):
                        cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"')
                    cursor.execute(f'REINDEX TABLE CONCURRENTLY "{partition.name}"')
                rebuilt.append(partition.name)
    return rebuilt


def _failed_rebuilds(cursor, table: str) -> list[str]:
    """The invalid `*_ccnew` indexes that a `REINDEX ... CONCURRENTLY` of `table` stopped
    midway (cancelled, killed, a timeout) left: PostgreSQL keeps updating them on every write
    and the next REINDEX skips them, so the run drops them first."""
    cursor.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisvalid AND c.relname ~ '_ccnew[0-9]*$'",
        [f'"{table}"'],
    )
    return [row[0] for row in cursor.fetchall()]


def _count(cursor, name: str) -> int:
    cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 - identifiers are this module's constants
    return int(cursor.fetchone()[0])


def old_partitions(cutoff: dt.datetime, table: str = TABLE, conn=None) -> list[Partition]:
    """The daily partitions of `table` whose whole day is older than `cutoff`."""
    return [p for p in partitions(conn, table) if p.end <= cutoff]


def drop_partitions_before(
    cutoff: dt.datetime,
    *,
    dry_run: bool = False,
    conn=None,
    table: str = TABLE,
    keep: str | None = None,
    keep_params: list | None = None,
    before_drop: Callable[[Any, list[str]], None] | None = None,
) -> tuple[list[str], int]:
    """Detach and drop every daily partition of `table` whose whole day is older than
    `cutoff`. `keep` (an SQL condition on the partition's rows, with `keep_params`) names
    the rows that must stay: they are moved out of the detached table into the parent
    table, so into the default partition (no partition covers their day any more).
    Returns (names, rows dropped, kept ones not counted). `dry_run` only counts.

    The detach and the move are one short transaction per day holding an ACCESS EXCLUSIVE
    lock on `table` (DETACH PARTITION takes it): writers wait for it, none loses a row, and
    what stays is decided under the lock. `before_drop(cursor, names)` then runs once on
    all the detached tables, which hold only the rows dropped and which no writer can reach
    any more, in one transaction (no lock on `table`), before they are dropped (e.g. to
    delete the rows referring to the dropped ones). Tables a prune detached but did not
    drop (it stopped in between) are finished by the next prune."""
    conn = conn or connection
    dropped, rows = [], 0
    where = f"WHERE NOT ({keep})" if keep else ""
    detached = [] if dry_run or before_drop is None else _detached_leftovers(table, conn, cutoff)
    for name in detached:  # a stopped prune's: their rows count now
        with conn.cursor() as cursor:
            rows += _count(cursor, name)
    for partition in old_partitions(cutoff, table, conn):
        with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
            if dry_run:
                cursor.execute(f'SELECT count(*) FROM "{partition.name}" {where}', keep_params or [])  # noqa: S608 - identifiers are this module's constants
                rows += int(cursor.fetchone()[0])
                dropped.append(partition.name)
                continue
            total = _count(cursor, partition.name)
            # Deferred foreign-key checks of this transaction's own writes must run
            # before the table goes (Django's constraints are INITIALLY DEFERRED).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{partition.name}"')
            moved = 0
            if keep:
                cursor.execute(
                    f'WITH kept AS (DELETE FROM "{partition.name}" WHERE {keep} RETURNING *) '  # noqa: S608 - identifiers are this module's constants
                    f'INSERT INTO "{table}" SELECT * FROM kept',
                    keep_params or [],
                )
                moved = cursor.rowcount
            if before_drop is None:
                cursor.execute(f'DROP TABLE "{partition.name}"')
            else:
                detached.append(partition.name)
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            rows += total - moved
        dropped.append(partition.name)
    if detached and before_drop is not None:
        with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
            before_drop(cursor, detached)
            for name in detached:
                cursor.execute(f'DROP TABLE "{name}"')
        dropped += [name for name in detached if name not in dropped]
    return dropped, rows


def _detached_leftovers(table: str, conn, cutoff: dt.datetime) -> list[str]:
    """Daily tables of `table` detached by a prune that stopped before dropping them: only
    days wholly older than `cutoff` (what a prune with it detaches). A day detached by hand
    (to archive it) that is not older is left alone."""
    if not is_partitioned(conn, table):
        return []
    pattern = _name_pattern(table)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
            "AND relnamespace = current_schema()::regnamespace AND relname ~ %s",
            [pattern.pattern],
        )
        names = [row[0] for row in cursor.fetchall()]
    old = []
    for name in names:
        match = pattern.match(name)
        try:
            day = dt.datetime.strptime(match.group(1), "%Y%m%d").date() if match else None
        except ValueError:
            day = None
        if day is not None and partition_for(day, table).end <= cutoff:
            old.append(name)
    return sorted(old)


# --- the migrations (webhooks 0011: the logs; 0014: deliveries and events) ---------------

#: Unique on a plain table, a plain index on a partitioned one (its uniqueness is held
#: elsewhere: `webhook_event_keys`).
_UNIQUE_WHEN_PLAIN = frozenset({"unique_event_idempotency_key"})


def _indexes_and_constraints(cursor, table: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(indexes not backing a constraint, constraints: unique and foreign keys), each as
    (name, definition)."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        [table],
    )
    indexes = list(cursor.fetchall())
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('f', 'u') ORDER BY contype DESC, conname",
        [table],
    )
    return indexes, list(cursor.fetchall())


def _index_for(name: str, definition: str, *, partitioned: bool) -> str:
    if partitioned:
        return definition.replace("CREATE UNIQUE INDEX", "CREATE INDEX", 1)
    if name in _UNIQUE_WHEN_PLAIN:
        return definition.replace("CREATE INDEX", "CREATE UNIQUE INDEX", 1)
    return definition


def _constraint_for(definition: str, *, partitioned: bool) -> str:
    """A unique constraint gains the partition key on a partitioned table, loses it back."""
    if not definition.startswith("UNIQUE ("):
        return definition
    if partitioned and "created_at" not in definition:
        return definition.replace(")", ", created_at)", 1)
    if not partitioned:
        return definition.replace(", created_at)", ")", 1)
    return definition


def convert(schema_editor, *, partitioned: bool, table: str = TABLE) -> None:
    """Rebuild `table` as one partitioned by day on `created_at` (or back as a plain one),
    keeping its name, columns, indexes and constraints (same names: check, unique, foreign
    keys from it) and every row: rename the old table, create the new one with a partition
    for each day that has rows, copy the rows in one statement (each goes to its day), drop
    the old one. A foreign key *to* the table must be gone first (migration 0014 drops
    them). Unique keys gain `created_at` (see the module's docstring) and lose it back."""
    conn = schema_editor.connection
    if not supported(conn) or is_partitioned(conn, table) == partitioned:
        return
    old = f"{table}_old"
    with conn.cursor() as cursor:
        # The rows copied are checked as they go: a table with deferred checks pending
        # cannot be altered (the partitions created ahead below), nor can the next one.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        indexes, constraints = _indexes_and_constraints(cursor, table)
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
        cursor.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{table}_pkey" TO "{old}_pkey"')
        for name, _ in indexes:
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name[:55]}_old"')
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{name}" TO "{name[:55]}_old"')
        suffix = " PARTITION BY RANGE (created_at)" if partitioned else ""
        key = "(id, created_at)" if partitioned else "(id)"
        cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS){suffix}')
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY {key}')
        for name, definition in indexes:
            definition = _index_for(name, definition, partitioned=partitioned)
            cursor.execute(re.sub(rf' ON (ONLY )?(\S+\.)?"?{old}"? ', f' ON "{table}" ', definition, count=1))
        for name, definition in constraints:
            definition = _constraint_for(definition, partitioned=partitioned)
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        if partitioned:
            cursor.execute(f'CREATE TABLE "{default_of(table)}" PARTITION OF "{table}" DEFAULT')
            cursor.execute(f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM \"{old}\" ORDER BY 1")  # noqa: S608 - identifiers are this module's constants
            for (day,) in cursor.fetchall():
                partition = partition_for(day, table)
                cursor.execute(
                    f'CREATE TABLE "{partition.name}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)',
                    [partition.start.isoformat(), partition.end.isoformat()],
                )
        cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')  # noqa: S608 - identifiers are this module's constants
        cursor.execute(f'DROP TABLE "{old}"')
    if partitioned:
        ensure_partitions(conn=conn, tables=(table,))
    with conn.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def delete_dangling(schema_editor) -> tuple[int, int]:
    """Delete the deliveries whose event is gone, then the logs whose delivery is gone
    (both backends). Since migration 0014 nothing in the database prevents them (a raw
    delete, a prune stopped between a day's detach and its drop); reversing 0014 restores
    the foreign keys, which they would violate. They are what the old schema's cascade
    would have deleted with their event or delivery. Returns (deliveries, logs) deleted."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{DELIVERIES}" WHERE NOT EXISTS '  # noqa: S608 - identifiers are this module's constants
            f'(SELECT 1 FROM "{EVENTS}" e WHERE e.id = "{DELIVERIES}".event_id)'
        )
        deliveries = cursor.rowcount
        cursor.execute(
            f'DELETE FROM "{LOGS}" WHERE NOT EXISTS '  # noqa: S608 - identifiers are this module's constants
            f'(SELECT 1 FROM "{DELIVERIES}" d WHERE d.id = "{LOGS}".delivery_id)'
        )
        return deliveries, cursor.rowcount


def create_event_keys(schema_editor) -> None:
    """`webhook_event_keys`: the events' idempotency keys, filled from the events."""
    conn = schema_editor.connection
    if not supported(conn):
        return
    with conn.cursor() as cursor:
        cursor.execute(
            f'CREATE TABLE "{EVENT_KEYS}" (organization_id uuid NOT NULL, idempotency_key varchar(200) NOT NULL, '
            "event_id uuid NOT NULL, created_at timestamptz NOT NULL, "
            f'CONSTRAINT "{EVENT_KEYS}_pkey" PRIMARY KEY (organization_id, idempotency_key))'
        )
        cursor.execute(f'CREATE INDEX "{EVENT_KEYS}_created_at" ON "{EVENT_KEYS}" (created_at)')
        cursor.execute(
            f'INSERT INTO "{EVENT_KEYS}" (organization_id, idempotency_key, event_id, created_at) '  # noqa: S608 - identifiers are this module's constants
            f'SELECT organization_id, idempotency_key, id, created_at FROM "{EVENTS}" WHERE idempotency_key IS NOT NULL'
        )


def drop_event_keys(schema_editor) -> None:
    if supported(schema_editor.connection):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{EVENT_KEYS}"')
