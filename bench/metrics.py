#!/usr/bin/env python
"""What recording metrics costs the delivery engine (`make bench`, or `python bench/metrics.py`).

Goal (docs/API.md §7): metrics cost at most 3% of delivery throughput.

In one process, with prometheus-client in multiprocess mode (PROMETHEUS_MULTIPROC_DIR set,
as under gunicorn and the cluster), it drains N due deliveries to a local receiver
(bench/receiver.py) with the engine's own loop (`webhooks.tasks.deliver_due`: claim, send
concurrently, record) in rounds, switching `METRICS_ENABLED` on and off between rounds in
the order on, off, off, on, on, off, ... (so a drift of the machine hits both alike). It
prints each round, the median deliveries/s with metrics on and off, and the difference;
and checks that the "on" rounds recorded every attempt and the "off" rounds none.

On PostgreSQL it also prints the CPU that the server spent per delivery on the loop's own
connection (its backend's utime + stime, read from /proc: the server must run on this
machine). `--past-days D` first creates the daily partitions of the D days before today
(webhooks/partitions.py), as a 30-day retention has them: each statement over the
partitioned tables is then planned against ~D + 8 partitions.

Options: --deliveries N (default 3000), --rounds R (default 6, even), --only sqlite|postgres,
--past-days D (default 0).
PostgreSQL: BENCH_POSTGRES_URL (default postgres://root@127.0.0.1:5432/bench_metrics; the
database is dropped and re-created), Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

PYTHON = sys.executable
#: the goal: metrics on costs at most this share of the throughput with metrics off
MAX_COST = 0.03


def _load_bench(stem: str):
    """A sibling benchmark module (bench/webhooks.py would shadow the `webhooks` app by name)."""
    spec = importlib.util.spec_from_file_location(f"bench_{stem}", ROOT / "bench" / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_scenario(name: str, args) -> int:
    extra = {"ALLOW_PRIVATE_URLS": "true", "WEBHOOKS_WAKEUPS": "false", "Q_CLUSTER_NAME": f"bench-metrics-{name}"}
    env = _common.scenario_env(name, bench="metrics", extra=extra, postgres_redis=True)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    with tempfile.TemporaryDirectory(prefix="bench-multiproc-") as directory:
        env["PROMETHEUS_MULTIPROC_DIR"] = directory
        cmd = [PYTHON, __file__, "--child", name, "--deliveries", str(args.deliveries), "--rounds", str(args.rounds)]
        cmd += ["--past-days", str(args.past_days)]
        return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def _backend_cpu() -> tuple[int, float] | None:
    """This connection's PostgreSQL backend: its pid and the seconds of CPU it has used (None
    elsewhere, or if the server's /proc is not ours to read)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def child(name: str, deliveries: int, rounds: int, past_days: int = 0) -> int:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from common.metrics import WEBHOOK_DELIVERIES, record_deliveries
    from organizations.services import organization_create
    from webhooks import app_settings as webhook_settings
    from webhooks import tasks
    from webhooks.models import Delivery, Event
    from webhooks.services import webhook_create

    Receiver = _load_bench("webhooks").Receiver  # the same receiver process as bench/webhooks.py

    label = "SQLite" if name == "sqlite" else "PostgreSQL"
    print(
        f"\n--- {label}: one process, the engine's loop, batch {webhook_settings.batch_size()}, "
        f"{webhook_settings.send_concurrency()} concurrent sends, {deliveries} deliveries per round ---",
        flush=True,
    )
    if past_days:
        import datetime as dt

        from webhooks import partitions

        today = timezone.now().astimezone(dt.UTC).date()
        start = today - dt.timedelta(days=past_days)
        partitions.ensure_partitions(today=start, days_ahead=past_days + partitions.PARTITION_DAYS_AHEAD)
        print(f"{len(partitions.partitions(table=partitions.DELIVERIES))} daily partitions per table", flush=True)
    receiver = Receiver()
    organization = organization_create(slug=f"bench-metrics-{name}")
    webhook = webhook_create(organization=organization, name="bench", url=receiver.url, events=["application.created"])

    def recorded() -> float:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return sum(
            s.value
            for f in registry.collect()
            if f.name == WEBHOOK_DELIVERIES._name
            for s in f.samples
            if s.name.endswith("_total")
        )

    def one_round(seq0: int) -> float:
        now = timezone.now()
        events = Event.objects.bulk_create(
            [
                Event(organization=organization, type="application.created", payload={"seq": seq0 + i})
                for i in range(deliveries)
            ]
        )
        Delivery.objects.bulk_create(
            [
                Delivery(organization=organization, event=e, webhook=webhook, max_attempts=1, next_attempt_at=now)
                for e in events
            ]
        )
        receiver.reset()
        server_started = _backend_cpu()
        started, cpu_started = time.perf_counter(), time.process_time()
        sent = 0
        while sent < deliveries:
            sent += tasks.deliver_due()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        server_ended = _backend_cpu()
        got = len({r[1] for r in receiver.wait(deliveries, 30)})
        if got != deliveries:
            raise RuntimeError(f"received {got} of {deliveries}")
        server = None
        if server_started is not None and server_ended is not None and server_ended[0] == server_started[0]:
            server = (server_ended[1] - server_started[1]) / deliveries * 1e6  # the same connection throughout
        return deliveries / elapsed, cpu / deliveries * 1e6, server

    def recording_cost() -> float:
        """Microseconds the recording itself takes per delivery (a batch of 50 2xx attempts)."""
        batch = [("succeeded", 200, 0.004, 0.012)] * 50
        started = time.perf_counter()
        for _ in range(400):
            record_deliveries(batch)
        return (time.perf_counter() - started) / (400 * 50) * 1e6

    failed = 0
    try:
        settings.METRICS_ENABLED = True
        one_round(10_000_000)  # warm up: connections, thread pool, metric files
        pattern = ["on", "off", "off", "on"]
        rates: dict[str, list[float]] = {"on": [], "off": []}
        cpus: dict[str, list[float]] = {"on": [], "off": []}
        servers: list[float] = []
        seq = 0
        for index in range(rounds):
            mode = pattern[index % 4]
            settings.METRICS_ENABLED = mode == "on"
            before = recorded()
            rate, cpu_us, server_us = one_round(seq)
            seq += deliveries
            counted = recorded() - before
            expected = deliveries if mode == "on" else 0
            ok = counted == expected
            failed += not ok
            rates[mode].append(rate)
            cpus[mode].append(cpu_us)
            server = ""
            if server_us is not None:
                servers.append(server_us)
                server = f" (PostgreSQL backend {server_us:,.0f} us)"
            print(
                f"round {index + 1}: metrics {mode:3}: {rate:,.0f} deliveries/s, {cpu_us:,.0f} us CPU per delivery"
                f"{server}; "
                f"webhook_deliveries_total +{counted:,.0f} (expected +{expected:,})" + ("" if ok else "  WRONG"),
                flush=True,
            )
        on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
        cost = (off - on) / off
        print(
            f"metrics on: {on:,.0f} deliveries/s, off: {off:,.0f} deliveries/s (medians of {len(rates['on'])}); "
            f"difference {off - on:+,.0f}/s = {cost:+.1%} of throughput (goal <= {MAX_COST:.0%})",
            flush=True,
        )
        cpu_on, cpu_off = statistics.median(cpus["on"]), statistics.median(cpus["off"])
        print(
            f"this process's CPU per delivery: on {cpu_on:,.0f} us, off {cpu_off:,.0f} us "
            f"({(cpu_on - cpu_off) / cpu_off:+.1%})",
            flush=True,
        )
        if servers:
            median = statistics.median(servers)
            print(f"the PostgreSQL backend's CPU per delivery: {median:,.0f} us (median of the rounds)", flush=True)
        settings.METRICS_ENABLED = True
        own = recording_cost()
        print(
            f"the recording itself: {own:.1f} us per delivery = {own / (1e6 / off):.2%} of a delivery's time "
            f"at {off:,.0f}/s",
            flush=True,
        )
        failed += cost > MAX_COST
    finally:
        receiver.stop()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=int(os.environ.get("BENCH_METRICS_DELIVERIES", 3000)))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--past-days", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if args.child:
        return child(args.child, args.deliveries, args.rounds, args.past_days)
    failed = 0
    for name in ["sqlite", "postgres"]:
        if args.only and args.only != name:
            continue
        failed += run_scenario(name, args) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
