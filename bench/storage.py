#!/usr/bin/env python
"""Storage per delivered attempt (`make bench`, or `python bench/storage.py`). PostgreSQL only.

A fresh database is loaded with `manage.py load_bench_data --logs N` (default 200,000: 10
webhooks, one with 89% of the rows, 10% failures, 30 days; one event, one delivery and one
attempt log per row), then it prints the bytes per attempt log in total (goal <= 0.8 kB) and
by table (events, deliveries, logs, idempotency keys: heap, TOAST, each index, partitions
summed) and, per table, each column's average stored size (`pg_column_size`, before the row
header and alignment). Twice: as loaded, then after the days before today are compacted as
the daily `webhooks.compact_partitions` compacts each day once it has closed
(`partitions.compact_partitions`: their indexes rebuilt packed). The goal applies to the
second, the steady state; `--no-compact` stops after the first.

Options: --logs N, --no-compact. PostgreSQL: BENCH_POSTGRES_URL (default
postgres://root@127.0.0.1:5432/bench_storage, dropped and re-created).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

TABLES = ("webhook_events", "webhook_deliveries", "webhook_logs", "webhook_event_keys")
GOAL = 800
#: what `load_bench_data` loads by default (its --days)
DAYS = 30


def manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def _relations(conn, table: str) -> list[int]:
    """The table and its partitions (a partitioned parent holds no rows itself)."""
    rows = conn.execute(
        "SELECT c.oid FROM pg_class c WHERE c.relname = %s"
        " UNION SELECT i.inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
        (table, table),
    ).fetchall()
    return [row[0] for row in rows]


def breakdown(conn, table: str) -> dict:
    oids = _relations(conn, table)
    heap, toast = conn.execute(
        "SELECT coalesce(sum(pg_relation_size(oid)), 0),"
        " coalesce(sum(CASE WHEN reltoastrelid <> 0 THEN pg_total_relation_size(reltoastrelid) END), 0)"
        " FROM pg_class WHERE oid = ANY(%s)",
        (oids,),
    ).fetchone()
    # An index on a partitioned table has one child per partition: summed under the parent's name.
    indexes = conn.execute(
        """
        SELECT coalesce(parent.relname, idx.relname), sum(pg_relation_size(idx.oid))
        FROM pg_index i JOIN pg_class idx ON idx.oid = i.indexrelid
        LEFT JOIN pg_inherits h ON h.inhrelid = idx.oid LEFT JOIN pg_class parent ON parent.oid = h.inhparent
        WHERE i.indrelid = ANY(%s) GROUP BY 1 ORDER BY 2 DESC, 1
        """,
        (oids,),
    ).fetchall()
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    columns = [
        row[0]
        for row in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
            " ORDER BY attnum",
            (table,),
        ).fetchall()
    ]
    sizes = []
    if rows:
        select = ", ".join(f'avg(pg_column_size("{name}"))' for name in columns)
        # A sample is enough for averages, and keeps this fast at millions of rows.
        values = conn.execute(f"SELECT {select} FROM (SELECT * FROM {table} LIMIT 20000) AS s").fetchone()
        sizes = [(name, float(value or 0)) for name, value in zip(columns, values, strict=True)]
    return {"heap": heap, "toast": toast, "indexes": indexes, "rows": rows, "columns": sizes}


def measure(dsn: str) -> tuple[int, dict]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")
        attempts = conn.execute("SELECT count(*) FROM webhook_logs").fetchone()[0]
        return attempts, {table: breakdown(conn, table) for table in TABLES}


def report(attempts: int, tables: dict, when: str) -> float:
    per = max(attempts, 1)
    total = sum(t["heap"] + t["toast"] + sum(size for _, size in t["indexes"]) for t in tables.values())
    print(f"Storage {when}: {total / per:,.0f} bytes per delivered attempt (goal <= {GOAL}), {attempts:,} attempts")
    for table, t in tables.items():
        index_total = sum(size for _, size in t["indexes"])
        print(
            f"  {table:20} {(t['heap'] + t['toast'] + index_total) / per:6.0f} B: heap {t['heap'] / per:5.0f}, "
            f"TOAST {t['toast'] / per:4.0f}, {len(t['indexes'])} indexes {index_total / per:5.0f}"
            f"  ({t['rows']:,} rows)"
        )
        for name, size in t["indexes"]:
            print(f"      index {name:36} {size / per:5.0f} B")
        if t["columns"]:
            stored = sum(size for _, size in t["columns"])
            cells = ", ".join(f"{name} {size:.0f}" for name, size in t["columns"])
            print(f"      columns (avg bytes, {stored:.0f} per row before header/alignment): {cells}")
    return total / per


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=200_000)
    parser.add_argument("--no-compact", action="store_true", help="measure as loaded only")
    args = parser.parse_args(argv if argv is not None else [])
    env = _common.scenario_env("postgres", bench="storage", extra={"ALLOW_PRIVATE_URLS": "true"})
    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    manage(env, "migrate", "-v0")
    manage(env, "load_bench_data", "--logs", str(args.logs))
    attempts, tables = measure(dsn)
    per_attempt = report(attempts, tables, "as loaded")
    if not args.no_compact:
        # Every loaded day but today has closed: each would have been compacted once.
        code = f"from webhooks import partitions; print(len(partitions.compact_partitions(days_back={DAYS + 1})))"
        rebuilt = manage(env, "shell", "-v", "0", "-c", code).strip().splitlines()[-1]
        attempts, tables = measure(dsn)
        per_attempt = report(attempts, tables, f"after compacting the {rebuilt} partitions of the closed days")
    return 0 if per_attempt <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
