"""Creating a daily partition next to a large default partition: how long a concurrent
reader by id (what the engine's claims and result writes do) is blocked.

Loads N logs into `webhook_logs_default` (days no partition covers), then runs
`ensure_partitions` for one new day of `webhook_logs` while another connection reads a log
by id every 2 ms; prints the creation's time and the reader's longest wait. PostgreSQL only.

    BENCH_POSTGRES_URL=postgres://root@127.0.0.1:5432/bench_partition_lock \\
        .venv/bin/python bench/partition_lock.py --rows 200000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import scenario_env  # noqa: E402


def child(rows: int) -> None:
    import django

    django.setup()
    import datetime as dt

    from django.db import connection, connections

    from organizations.models import Organization
    from webhooks import partitions
    from webhooks.services import webhook_create

    org = Organization.objects.create(name="Bench", slug="bench")
    webhook = webhook_create(organization=org, name="bench", url="http://127.0.0.1:9/", events=["application.created"])
    with connection.cursor() as cursor:  # in 2020: no partition covers those days
        cursor.execute(
            "INSERT INTO webhook_logs (id, event_type, attempt, request_url, request_headers, response_status, "
            "response_body, duration_ms, error, success, created_at, delivery_id, organization_id, webhook_id) "
            "SELECT gen_random_uuid(), 'application.created', 1, 'https://a.test/', '{}', 200, 'ok', 12.5, '', "
            "true, timestamptz '2020-01-01' + make_interval(secs => i * 60), gen_random_uuid(), %s, %s "
            "FROM generate_series(1, %s) i",
            [org.pk, webhook.pk, rows],
        )
        cursor.execute(f"ANALYZE {partitions.DEFAULT}")
        cursor.execute(f"SELECT count(*), min(id::text) FROM {partitions.DEFAULT}")
        count, some_id = cursor.fetchone()
    print(f"loaded {count:,} logs into {partitions.DEFAULT}")
    for run, day in enumerate([dt.date(2031, 1, 1), dt.date(2031, 2, 1), dt.date(2031, 3, 1)], 1):
        waits: list[float] = []
        done = threading.Event()

        def reader(waits: list[float] = waits, done: threading.Event = done) -> None:
            reading = connections.create_connection("default")
            try:
                with reading.cursor() as cursor:
                    while not done.is_set():
                        started = time.perf_counter()
                        cursor.execute("SELECT count(*) FROM webhook_logs WHERE id = %s", [some_id])
                        waits.append(time.perf_counter() - started)
                        time.sleep(0.002)
            finally:
                reading.close()

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.2)
        started = time.perf_counter()
        created = partitions.ensure_partitions(today=day, days_ahead=0, tables=(partitions.LOGS,))
        elapsed = time.perf_counter() - started
        time.sleep(0.2)
        done.set()
        thread.join()
        print(
            f"run {run}: created {created} in {elapsed * 1000:.0f} ms; the reader's longest wait "
            f"{max(waits) * 1000:.0f} ms (median {sorted(waits)[len(waits) // 2] * 1000:.1f} ms, {len(waits)} reads)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="logs in the default partition (default 200,000)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.rows <= 10_000_000:
        parser.error("--rows must be between 1 and 10,000,000")
    if args.child:
        child(args.rows)
        return
    env = scenario_env("postgres", bench="partition_lock", extra={"ALLOW_PRIVATE_URLS": "true"})
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, __file__, "--child", "--rows", str(args.rows)], cwd=ROOT, env=env, check=True, timeout=900)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
