#!/usr/bin/env python
"""The REST API under load (`make bench`, or `python bench/api.py`).

PostgreSQL + Redis. A fresh database is loaded with `manage.py load_bench_data --logs N`
(10 webhooks, one with 89% of the rows, 10% failures, 30 days), then gunicorn runs the API
with 2 workers and, for each target, the bench measures one client's sequential requests
(median, p95) and wrk's throughput (req/s, p50/p95 under `--connections`):
- `POST /api/events/` without and with idempotency keys (an organization of its own with one webhook);
- `POST /api/events/batch/` (100 events a request), "not available" when it answers 404;
- the webhook list; logs page 1 and a deep cursor page (80% down the big webhook's history);
- stats of the big webhook and of a small one (1% of the rows).
Beside the new reads it times main's method on the same rows (SQL only: the log page with
its `COUNT(*)`, stats from the logs with `percentile_cont`), and it prints the storage per
delivered attempt across the tables it involves.

Options: --logs N (default 10,000), --big (5,000,000 rows), --duration S (wrk, default 3),
--connections C (default 8), --samples N (sequential requests per target, default 100),
--worker-class K and --threads N (gunicorn's -k and --threads; default config/gunicorn.py's,
gthread with 4 threads: what production runs),
--only post (the POST targets alone, without loading log rows), --reuse (keep a database
loaded by an earlier run: migrated, not loaded again; a 5 M-row load takes about 15 minutes).
For the POST targets it also prints the workers' CPU time per request (or per event), read
from /proc, and the load average.
PostgreSQL: BENCH_POSTGRES_URL (default postgres://root@127.0.0.1:5432/bench_api, dropped and
re-created), Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

PYTHON = sys.executable
WRK = shutil.which("wrk") or "/usr/bin/wrk"
LUA = ROOT / "bench" / "wrk"
BIG = 5_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(min(round(pct / 100 * len(ordered) + 0.5) - 1, len(ordered) - 1), 0)
    return ordered[index]


def manage(env: dict, *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def cursor_for(created_at: str, pk: str) -> str:
    """The format of common/api/pagination.py CursorPagination.encode (opaque to clients)."""
    raw = json.dumps([created_at, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Api:
    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        data = json.dumps(body) if body is not None else None
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # A keep-alive connection (gthread) the server closed while wrk ran: sent nothing.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
        return response.status, response.read()

    def timed(self, method: str, path: str, samples: int, body=None) -> tuple[float, float, int]:
        times, status = [], 0
        for n in range(samples + 5):
            started = time.perf_counter()
            status, _ = self.request(method, path, body(n) if callable(body) else body)
            if n >= 5:  # warm-up
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times), percentile(times, 95), status


def wrk(port: int, key: str, path: str, script: str, args, extra_env: dict | None = None) -> dict:
    cmd = [WRK, "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s", "--timeout", "10s"]
    cmd += ["-H", f"Authorization: Bearer {key}", "-s", str(LUA / script), f"http://127.0.0.1:{port}{path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(extra_env or {})})
    for line in done.stdout.splitlines():
        if line.startswith("WRK "):
            result = json.loads(line[4:])
            result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
            return result
    raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")


def sql_timed(dsn: str, statements: list[tuple[str, tuple]], samples: int) -> tuple[float, float]:
    import psycopg

    times = []
    with psycopg.connect(dsn) as conn:
        for n in range(samples + 2):
            started = time.perf_counter()
            for sql, params in statements:
                conn.execute(sql, params).fetchall()
            if n >= 2:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), percentile(times, 95)


def storage(dsn: str) -> tuple[float, list[tuple]]:
    import psycopg

    tables = ("webhook_logs", "webhook_deliveries", "webhook_events", "webhook_hourly_stats")
    with psycopg.connect(dsn) as conn:
        # A partitioned table (webhook_logs on PostgreSQL) holds nothing itself: sum its
        # partitions (pg_partition_tree lists nothing for a plain table: the table itself is added).
        rows = conn.execute(
            "SELECT t.name, sum(pg_relation_size(p.relid))::bigint, sum(pg_indexes_size(p.relid))::bigint,"
            " sum(pg_total_relation_size(p.relid))::bigint,"
            " (SELECT count(*) FROM pg_index WHERE indrelid = t.name::regclass)"
            " FROM unnest(%s::text[]) AS t(name), LATERAL (SELECT relid FROM pg_partition_tree(t.name::regclass)"
            " UNION SELECT t.name::regclass) p"
            " GROUP BY t.name ORDER BY t.name",
            (list(tables),),
        ).fetchall()
        attempts = conn.execute("SELECT count(*) FROM webhook_logs").fetchone()[0]
    return sum(row[3] for row in rows) / max(attempts, 1), rows


def analyze_partitions_written(dsn: str) -> int:
    """ANALYZE the partitions that earlier runs' POST targets wrote (today's, mostly), as
    autovacuum would: on a server running without it, their statistics stay those of an
    empty table, and the reads' plans (stats' pending count) go wrong on their rows.
    Returns how many were analyzed."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [
            name
            for (name,) in conn.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE n_mod_since_analyze > 1000"
                " AND relname ~ '^webhook_(logs|deliveries|events|event_keys)'"
            ).fetchall()
        ]
        for name in names:
            conn.execute(f'ANALYZE "{name}"')
    return len(names)


def loaded_hooks(dsn: str) -> list[list[str]]:
    """The bench organization's webhooks with their log counts, most first (as the loader prints them)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT w.id::text, (SELECT count(*) FROM webhook_logs l WHERE l.webhook_id = w.id) AS n"
            " FROM webhooks w JOIN organizations_organization o ON o.id = w.organization_id"
            " WHERE o.slug = 'bench' ORDER BY n DESC"
        ).fetchall()
    return [[pk, str(n)] for pk, n in rows]


def run(args) -> int:
    env = _common.scenario_env(
        "postgres", bench="api", extra={"ALLOW_PRIVATE_URLS": "true"}, postgres_redis=True, recreate=not args.reuse
    )
    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    manage(env, "migrate", "-v0")
    reads_too = args.only == "all"
    logs = (BIG if args.big else args.logs) if reads_too else 1
    started = time.monotonic()
    hooks = loaded_hooks(dsn) if args.reuse else []
    if hooks:
        print(f"Reusing the loaded database ({sum(int(n) for _, n in hooks):,} logs; --reuse).", flush=True)
        analyzed = analyze_partitions_written(dsn)
        print(f"Analyzed {analyzed} partitions written since their last ANALYZE (earlier runs' POSTs).", flush=True)
    else:
        loaded = manage(env, "load_bench_data", "--logs", str(logs))
        hooks = [line.split()[1:] for line in loaded.splitlines() if line.startswith("webhook ")]
        manage(env, "load_bench_data", "--logs", "1", "--webhooks", "1", "--organization", "bench-trigger")
        print(f"Loaded {logs:,} logs in {time.monotonic() - started:.0f} s.", flush=True)
    big, small = hooks[0][0], hooks[-1][0]
    print(f"Big webhook {hooks[0][1]} rows, small {hooks[-1][1]}.", flush=True)
    key = manage(env, "create_api_key", "bench").strip().splitlines()[-1]
    trigger_key = manage(env, "create_api_key", "bench-trigger").strip().splitlines()[-1]

    import psycopg

    with psycopg.connect(dsn) as conn:
        offset = int(int(hooks[0][1]) * 0.8)
        created_at, pk = conn.execute(
            "SELECT created_at, id FROM webhook_logs WHERE webhook_id = %s ORDER BY created_at DESC, id DESC "
            "OFFSET %s LIMIT 1",
            (big, offset),
        ).fetchone()
        org = conn.execute("SELECT organization_id FROM webhooks WHERE id = %s", (big,)).fetchone()[0]
    deep = cursor_for(created_at.isoformat(), str(pk))

    port = free_port()
    server = subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level",
         "warning", "--access-logfile", "/dev/null", "-k", args.worker_class, "--threads", str(args.threads)],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    failed = 0
    try:
        api = wait_until_up(port, key)
        trigger_api = Api(port, trigger_key)
        base = "/api/integrations/webhooks/"
        reads = [
            ("webhook list", base, None),
            ("logs page 1 (big webhook)", f"{base}{big}/logs/", "logs"),
            ("logs, deep cursor (80% down)", f"{base}{big}/logs/?cursor={deep}", "logs"),
            ("stats (big webhook)", f"{base}{big}/stats/", "stats"),
            ("stats, 30 d window (big webhook)", f"{base}{big}/stats/?window=30d", "stats"),
            ("stats (small webhook)", f"{base}{small}/stats/", "stats-small"),
        ]
        print(f"\n{'target':36} {'median':>9} {'p95':>9} {'req/s (wrk)':>12} {'wrk p95':>9}  main's method (SQL only)")
        for label, path, old in reads if reads_too else []:
            median, p95, status = api.timed("GET", path, args.samples)
            cpu = workers_cpu(server.pid)
            result = wrk(port, key, path, "get.lua", args)
            cpu_ms = (workers_cpu(server.pid) - cpu) * 1000 / max(result["requests"], 1)
            failed += status != 200 or result["non2xx"] > 0
            print(f"{label:36} {median:7.1f}ms {p95:7.1f}ms {result['rps']:12.0f} {result['p95_ms']:7.1f}ms  "
                  f"{old_method(dsn, old, big, small, org, args.samples)}{'' if status == 200 else f'  HTTP {status}'}"
                  f"  workers' CPU {cpu_ms:.2f} ms/request", flush=True)  # fmt: skip
        event = {"event": "application.created", "payload": {"application_id": "a1", "stage": "applied"}}
        for label, keyed in (("POST /api/events/", False), ("POST /api/events/ + idempotency key", True)):

            def body(n, keyed=keyed):
                return {**event, "idempotency_key": f"seq-{time.time_ns()}-{n}"} if keyed else event

            median, p95, status = trigger_api.timed("POST", "/api/events/", args.samples, body)
            keys = {"WRK_IDEMPOTENCY": "1" if keyed else "0"}
            cpu = workers_cpu(server.pid)
            result = wrk(port, trigger_key, "/api/events/", "post_event.lua", args, keys)
            cpu_ms = (workers_cpu(server.pid) - cpu) * 1000 / max(result["requests"], 1)
            failed += status != 202 or result["non2xx"] > 0
            line = f"{label:36} {median:7.1f}ms {p95:7.1f}ms {result['rps']:12.0f} {result['p95_ms']:7.1f}ms"
            line += f"  workers' CPU {cpu_ms:.2f} ms/request"
            print(line, f" non-2xx {result['non2xx']}" if result["non2xx"] else "", flush=True)
        probe = {"events": [{**event, "idempotency_key": f"probe-{time.time_ns()}"}]}
        status, _ = trigger_api.request("POST", "/api/events/batch/", probe)
        label = "POST /api/events/batch/ (100 events)"
        if not 200 <= status < 300:
            print(f"{label:36} not available (HTTP {status}: the endpoint is not on this branch)")
        else:
            cpu = workers_cpu(server.pid)
            result = wrk(port, trigger_key, "/api/events/batch/", "post_batch.lua", args, {"WRK_BATCH": "100"})
            cpu_ms = (workers_cpu(server.pid) - cpu) * 1000 / max(result["requests"] * 100, 1)
            events_per_s = result["rps"] * 100
            failed += result["non2xx"] > 0
            print(
                f"{label:36} {'':>9} {'':>9} {result['rps']:12.0f} {result['p95_ms']:7.1f}ms  "
                f"= {events_per_s:,.0f} events/s; non-2xx {result['non2xx']}; workers' CPU {cpu_ms:.3f} ms/event"
            )
        print(f"Load average during the run: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    if not reads_too:
        return 1 if failed else 0
    per_attempt, tables = storage(dsn)
    print(f"\nStorage: {per_attempt / 1000:.2f} kB per delivered attempt (goal <= 0.8 kB), heap + indexes:")
    for name, heap, indexes, total, count in tables:
        sizes = f"heap {heap / 1e6:8.1f} MB  {count} indexes {indexes / 1e6:8.1f} MB  total {total / 1e6:8.1f} MB"
        print(f"  {name:22} {sizes}")
    return 1 if failed else 0


def old_method(dsn: str, kind: str | None, big: str, small: str, org, samples: int) -> str:
    """main's queries for the same page: the log page with its COUNT(*) (DRF page-number
    pagination), stats from the logs (all time and 24 h, percentile_cont)."""
    if kind is None:
        return "(unchanged)"
    hook = small if kind == "stats-small" else big
    where = "webhook_id = %s AND organization_id = %s"
    if kind == "logs":
        statements = [
            (f"SELECT count(*) FROM webhook_logs WHERE {where}", (hook, org)),
            (f"SELECT * FROM webhook_logs WHERE {where} ORDER BY created_at DESC, attempt DESC LIMIT 50", (hook, org)),
        ]
    else:
        stats = (
            "SELECT count(*), count(*) FILTER (WHERE success), avg(duration_ms),"
            " percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FROM webhook_logs WHERE " + where
        )
        statements = [(stats, (hook, org)), (stats + " AND created_at >= now() - interval '24 hours'", (hook, org))]
    median, p95 = sql_timed(dsn, statements, max(samples // 10, 5))
    return f"{median:.1f} / {p95:.1f} ms"


def workers_cpu(master: int) -> float:
    """User + system CPU seconds of gunicorn's workers (the master's children), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # fields[1] is the parent pid; utime, stime are 14 and 15
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wait_until_up(port: int, key: str) -> Api:
    deadline = time.monotonic() + 60
    while True:
        try:
            api = Api(port, key)
            api.request("GET", "/api/integrations/webhooks/")
            return api
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=int, default=int(os.environ.get("BENCH_API_LOGS", 10_000)))
    parser.add_argument("--big", action="store_true", help=f"{BIG:,} log rows")
    parser.add_argument("--duration", type=int, default=3, help="seconds of wrk per target")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn's -k (gthread, the default, or sync)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn's --threads (gthread; default 4)")
    parser.add_argument(
        "--reuse", action="store_true",
        help="keep the database if it holds a loaded bench organization (migrated, not loaded again)",
    )  # fmt: skip
    parser.add_argument(
        "--only", choices=("all", "post"), default="all", help="post: only the POST targets (no log rows loaded)"
    )
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if not Path(WRK).exists():
        print("wrk is not installed (Debian: apt-get install wrk): skipped.")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
