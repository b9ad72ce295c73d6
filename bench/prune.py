"""Retention at scale: load N rows (logs : deliveries : events = 2 : 1 : 1, spread over
30 days, 1% of deliveries still pending), then time `logs_prune(older_than_days=7)`.

PostgreSQL: rows loaded with generate_series into the daily partitions of webhook_logs;
prints rows/s and pg_total_relation_size before/after (disk returned). SQLite: rows loaded
with a recursive CTE; prints rows/s of the batched deletes.

    .venv/bin/python bench/prune.py --rows 1000000 [--backend postgres|sqlite|both]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import scenario_env  # noqa: E402

DAYS, KEEP_DAYS = 30, 7


def _load(connection, org_id: str, webhook_id: str, rows: int) -> None:
    events = rows // 4
    span = DAYS * 86400.0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":

            def uid(prefix: str, column: str) -> str:
                return f"('{prefix}' || lpad(to_hex({column}), 31, '0'))::uuid"

            at = f"now() - make_interval(secs => i * {span / events})"
            cursor.execute(
                f"INSERT INTO webhook_events (id, type, payload, created_at, organization_id) "
                f"SELECT {uid('e', 'i')}, 'application.created', '{{\"n\": 1}}', {at}, %s "
                f"FROM generate_series(1, {events}) i",
                [org_id],
            )
            cursor.execute(
                "INSERT INTO webhook_deliveries (id, state, attempts, max_attempts, next_attempt_at, last_error, "
                "created_at, finished_at, organization_id, event_id, webhook_id) "
                f"SELECT {uid('d', 'i')}, CASE WHEN mod(i, 100) = 0 THEN 'pending' ELSE 'succeeded' END, 1, 3, "
                f"CASE WHEN mod(i, 100) = 0 THEN now() + interval '1 day' END, '', {at}, "
                f"CASE WHEN mod(i, 100) = 0 THEN NULL ELSE {at} END, %s, {uid('e', 'i')}, %s "
                f"FROM generate_series(1, {events}) i",
                [org_id, webhook_id],
            )
            at_log = f"now() - make_interval(secs => (i / 2) * {span / events})"
            cursor.execute(
                "INSERT INTO webhook_logs (id, event_type, attempt, request_url, request_headers, "
                "response_status, response_body, duration_ms, error, success, created_at, delivery_id, "
                "organization_id, webhook_id) "
                f"SELECT {uid('a', 'i')}, 'application.created', 1, 'https://a.test/', '{{}}', 200, "
                f"'ok', 12.5, '', true, {at_log}, {uid('d', 'greatest(i / 2, 1)')}, %s, %s "
                f"FROM generate_series(2, {2 * events + 1}) i",
                [org_id, webhook_id],
            )
            cursor.execute("ANALYZE webhook_events; ANALYZE webhook_deliveries; ANALYZE webhook_logs")
            return
        org, hook = org_id.replace("-", ""), webhook_id.replace("-", "")
        series = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "
        at = f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (i * {span / events}) || ' seconds')"
        cursor.execute(
            series.format(n=events) + "INSERT INTO webhook_events (id, type, payload, created_at, organization_id) "
            f"SELECT printf('e%031x', i), 'application.created', '{{\"n\": 1}}', {at}, '{org}' FROM s"
        )
        cursor.execute(
            series.format(n=events)
            + "INSERT INTO webhook_deliveries (id, state, attempts, max_attempts, next_attempt_at, last_error, "
            "created_at, finished_at, organization_id, event_id, webhook_id) "
            "SELECT printf('d%031x', i), CASE WHEN i % 100 = 0 THEN 'pending' ELSE 'succeeded' END, 1, 3, "
            "CASE WHEN i % 100 = 0 THEN strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day') END, '', "
            f"{at}, CASE WHEN i % 100 = 0 THEN NULL ELSE {at} END, '{org}', printf('e%031x', i), '{hook}' FROM s"
        )
        at_log = f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ((i / 2) * {span / events}) || ' seconds')"
        cursor.execute(
            series.format(n=2 * events + 1)
            + "INSERT INTO webhook_logs (id, event_type, attempt, request_url, request_headers, "
            "response_status, response_body, duration_ms, error, success, created_at, delivery_id, "
            "organization_id, webhook_id) "
            "SELECT printf('a%031x', i), 'application.created', 1, 'https://a.test/', '{}', 200, 'ok', "
            f"12.5, '', 1, {at_log}, printf('d%031x', max(i / 2, 1)), '{org}', '{hook}' FROM s WHERE i >= 2"
        )
        cursor.execute("ANALYZE")


def _sizes(connection) -> dict[str, int]:
    if connection.vendor != "postgresql":
        return {}
    out = {}
    with connection.cursor() as cursor:
        for table in ("webhook_logs", "webhook_deliveries", "webhook_events"):
            # a partitioned table's own size is 0: sum its partitions
            cursor.execute(
                "SELECT greatest((SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
                "FROM pg_partition_tree(%s::regclass)), pg_total_relation_size(%s::regclass))",
                [table, table],
            )
            out[table] = int(cursor.fetchone()[0])
    return out


def child(rows: int) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from organizations.models import Organization
    from webhooks import partitions
    from webhooks.models import Delivery, Event, WebhookLog
    from webhooks.services import logs_prune, webhook_create

    org = Organization.objects.create(name="Bench", slug="bench")
    webhook = webhook_create(organization=org, name="bench", url="http://127.0.0.1:9/", events=["application.created"])
    oldest = (timezone.now() - timezone.timedelta(days=DAYS + 1)).date()
    partitions.ensure_partitions(today=oldest, days_ahead=DAYS + 1 + partitions.PARTITION_DAYS_AHEAD)
    started = time.monotonic()
    _load(connection, str(org.pk), str(webhook.pk), rows)
    counts = (WebhookLog.objects.count(), Delivery.objects.count(), Event.objects.count())
    print(
        f"{connection.vendor}: loaded {sum(counts):,} rows (logs/deliveries/events {counts})"
        f" in {time.monotonic() - started:.1f} s"
    )
    before = _sizes(connection)
    started = time.monotonic()
    phases: dict[str, float] = {}

    def progress(kind: str, done: int) -> None:
        phases[kind] = time.monotonic() - started

    result = logs_prune(older_than_days=KEEP_DAYS, batch_size=5000, progress=progress)
    elapsed = time.monotonic() - started
    deleted = result.logs + result.deliveries + result.events
    after_counts = (WebhookLog.objects.count(), Delivery.objects.count(), Event.objects.count())
    print(
        f"{connection.vendor}: pruned {deleted:,} rows (logs {result.logs:,}, deliveries {result.deliveries:,}, "
        f"events {result.events:,}; {len(result.partitions_dropped)} partitions dropped) in {elapsed:.1f} s = "
        f"{deleted / elapsed:,.0f} rows/s; left {after_counts}"
    )
    print("  phases end at (s): " + ", ".join(f"{kind} {at:.1f}" for kind, at in phases.items()))
    # Per table: its rows over the time since the previous phase ended (one retention scope
    # here, so logs, then deliveries, then events).
    counts_by_kind = {"logs": result.logs, "deliveries": result.deliveries, "events": result.events}
    previous = 0.0
    for kind, at in phases.items():
        spent = max(at - previous, 1e-6)
        print(f"  {kind}: {counts_by_kind[kind]:,} rows in {spent:.1f} s = {counts_by_kind[kind] / spent:,.0f} rows/s")
        previous = at
    print(f"  partitions dropped: {len(result.partitions_dropped)} ({', '.join(result.partitions_dropped[:2])}...)")
    if before:
        after = _sizes(connection)
        for table in before:
            print(f"  {table}: {before[table] / 2**20:,.0f} MB -> {after[table] / 2**20:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows loaded in all (default 1,000,000)")
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 4 <= args.rows <= 20_000_000:
        parser.error("--rows must be between 4 and 20,000,000")
    if args.child:
        child(args.rows)
        return
    for backend in ("postgres", "sqlite") if args.backend == "both" else (args.backend,):
        env = scenario_env(
            "sqlite" if backend == "sqlite" else "postgres", bench="prune", extra={"ALLOW_PRIVATE_URLS": "true"}
        )
        python = str(ROOT / ".venv" / "bin" / "python")
        subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run(
            [python, __file__, "--child", "--rows", str(args.rows)], cwd=ROOT, env=env, check=True, timeout=1800
        )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
