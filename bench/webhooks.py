#!/usr/bin/env python
"""Webhook delivery benchmark (`make bench`, or `python bench/webhooks.py`).

For each configuration (SQLite + ORM broker; PostgreSQL + Redis broker) it creates a fresh
database, starts a local receiver (bench/receiver.py) and a real django-q2 cluster with 2
workers, then in this one process:
- throughput: triggers N events (one webhook) and measures first trigger -> N-th receipt,
  once with single triggers (`trigger_event`) and once with batch triggers of 100
  (`trigger_events`), the batch figure printed beside the single one (the previous method);
- latency: triggers events at 10/s and measures trigger (commit) -> receipt, p50/p95/p99;
- fan-out: one event to 1,000 subscribed webhooks, time until all are received;
and counts lost (never received) and duplicated (received twice) deliveries. Then, with the
cluster stopped, the trigger path alone: events/s of `trigger_event` (with and without an
idempotency key) and of `trigger_events` in batches of 100 and 1,000 (the batch endpoint's
service), each event with its delivery.

Options: --events N (default 3000), --only sqlite|postgres, --latency-events N, --peer (after
the PostgreSQL scenario, django-webhook in the same conditions, bench/peer.py, and the ratio
of our single-trigger figure to its figure: `ours X/s, django-webhook Y/s, ratio Zx`).
PostgreSQL: BENCH_POSTGRES_URL (default postgres://root@127.0.0.1:5432/bench_webhooks; the
database is dropped and re-created), Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = max(min(round(pct / 100 * len(ordered) + 0.5) - 1, len(ordered) - 1), 0)
    return ordered[index]


def scenario_env(name: str) -> dict[str, str]:
    extra = {"ALLOW_PRIVATE_URLS": "true", "Q_WORKERS": "2", "Q_CLUSTER_NAME": f"bench-{name}"}
    return _common.scenario_env(name, bench="webhooks", extra=extra, postgres_redis=True)


def run_scenario(name: str, args, result_file: str | None = None) -> int:
    """Parent side: prepare, then re-run this file as the measuring child (which writes its
    throughput figures as JSON to `result_file`, if given)."""
    env = scenario_env(name)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    cmd = [
        PYTHON,
        __file__,
        "--child",
        name,
        "--events",
        str(args.events),
        "--latency-events",
        str(args.latency_events),
    ]
    if result_file:
        cmd += ["--result-file", result_file]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def run_peer(args, ours: dict) -> int:
    """bench/peer.py's measurement right after ours, and the ratio of the two figures."""
    spec = importlib.util.spec_from_file_location("bench_peer", ROOT / "bench" / "peer.py")
    assert spec is not None and spec.loader is not None
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    figures = peer.measure(args.events)
    if figures is None:
        return 0  # skipped, and said why
    if "rate" not in figures:
        print("django-webhook: the measurement failed (above); no ratio", flush=True)
        return 1
    print(
        f"\nend to end, single triggers, N = {args.events}: ours {ours['single_rate']:,.0f} deliveries/s "
        f"(load average {ours['load_average']}), django-webhook {figures['rate']:,.0f} deliveries/s "
        f"(load average {figures['load_average']}), ratio {ours['single_rate'] / figures['rate']:.1f}x (goal >= 10x)",
        flush=True,
    )
    return 1 if figures["failed"] else 0


class CpuMeter:
    """CPU time (utime + stime, from /proc) of this machine's processes, by part: this
    triggering process, the cluster (its session: the main process, pusher, workers,
    monitor), the PostgreSQL server's processes, Redis, the receiver, everything else.
    `delta()` since `start()`; empty where /proc is not readable (not Linux)."""

    def __init__(self, cluster_pid: int, receiver_pid: int):
        self.cluster_pid, self.receiver_pid = cluster_pid, receiver_pid
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.before: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        parts: dict[str, float] = {}
        try:
            entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
        except OSError:
            return parts
        for entry in entries:
            try:
                comm, rest = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)
            except OSError:
                continue  # ended meanwhile
            fields = rest.split()
            pid, sid, cpu = int(entry), int(fields[3]), (int(fields[11]) + int(fields[12])) / self.tick
            name = comm.split("(", 1)[1]
            if pid == os.getpid():
                part = "trigger process"
            elif sid == self.cluster_pid:
                part = "cluster"
            elif pid == self.receiver_pid:
                part = "receiver"
            elif name == "postgres":
                part = "PostgreSQL"
            elif name.startswith("redis-server"):
                part = "Redis"
            else:
                part = "other"
            parts[part] = parts.get(part, 0.0) + cpu
        return parts

    def start(self) -> None:
        self.before = self.sample()

    def line(self, deliveries: int) -> str:
        after = self.sample()
        if not after or not deliveries:
            return "CPU per delivery: not available (no /proc)"
        order = ["trigger process", "cluster", "PostgreSQL", "Redis", "receiver", "other"]
        used = {part: after.get(part, 0.0) - self.before.get(part, 0.0) for part in order}
        total = sum(used.values())
        shown = ", ".join(f"{part} {used[part] / deliveries * 1e6:,.0f}" for part in order)
        return f"CPU per delivery (us): {shown}; total {total / deliveries * 1e6:,.0f}"


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([PYTHON, str(ROOT / "bench" / "receiver.py"), str(self.port)])
        for _ in range(100):
            try:
                self._get("/reset")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("receiver did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as response:
            return json.loads(response.read())

    def records(self) -> list:
        return self._get("/records")

    def reset(self) -> None:
        self._get("/reset")

    def wait(self, count: int, timeout: float) -> list:
        deadline = time.time() + timeout
        while True:
            records = self.records()
            if len(records) >= count or time.time() > deadline:
                return records
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def child(name: str, events: int, latency_events: int, result_file: str | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from organizations.services import organization_create
    from webhooks import app_settings as webhook_settings
    from webhooks.models import Webhook
    from webhooks.services import trigger_event, trigger_events, webhook_create

    label = "SQLite + ORM broker" if name == "sqlite" else "PostgreSQL + Redis broker"
    print(f"\n--- {label}: 2 workers, batch {webhook_settings.batch_size()} ---", flush=True)
    receiver = Receiver()
    organization = organization_create(slug=f"bench-{name}")
    webhook = webhook_create(organization=organization, name="bench", url=receiver.url, events=["application.created"])
    # The cluster inherits this child's environment: DJANGO_SETTINGS_MODULE from scenario_env().
    cluster = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, start_new_session=True)
    failed = 0
    try:
        # Warm up: the cluster is up and the connection pool is open.
        trigger_event(organization=organization, event="application.created", payload={"seq": -1})
        if len(receiver.wait(1, 60)) < 1:
            raise RuntimeError("the cluster delivered nothing within 60 s")
        receiver.reset()
        load_before = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())

        # 1. Throughput.
        meter = CpuMeter(cluster.pid, receiver.proc.pid)
        meter.start()
        started = time.time()
        for seq in range(events):
            trigger_event(organization=organization, event="application.created", payload={"seq": seq})
        triggered = time.time()
        records = receiver.wait(events, timeout=max(120, events / 20))
        ids = [r[1] for r in records]
        last = max((r[0] for r in records), default=time.time())
        lost = events - len(set(ids))
        duplicated = len(ids) - len(set(ids))
        rate = len(set(ids)) / (last - started)
        print(
            f"throughput: {events} events -> {len(set(ids))} received in {last - started:.2f} s = "
            f"{rate:,.0f} deliveries/s (trigger loop {events / (triggered - started):,.0f} events/s); "
            f"lost {lost}, duplicated {duplicated}",
            flush=True,
        )
        print(meter.line(len(set(ids))), flush=True)
        failed += lost > 0 or duplicated > 0
        single_rate = rate
        if result_file:
            load = "{} -> {:.1f} {:.1f} {:.1f}".format(load_before, *os.getloadavg())
            Path(result_file).write_text(json.dumps({"single_rate": rate, "load_average": load}))

        # 1b. Throughput with batch triggers of 100.
        receiver.reset()
        base = 2_000_000
        meter.start()
        started = time.time()
        for first in range(0, events, 100):
            batch = [
                {"event": "application.created", "payload": {"seq": base + seq}}
                for seq in range(first, min(first + 100, events))
            ]
            trigger_events(organization=organization, events=batch)
        triggered = time.time()
        records = receiver.wait(events, timeout=max(120, events / 20))
        ids = [r[1] for r in records]
        last = max((r[0] for r in records), default=time.time())
        lost = events - len(set(ids))
        duplicated = len(ids) - len(set(ids))
        rate = len(set(ids)) / (last - started)
        print(
            f"throughput, batch triggers of 100: {events} events -> {len(set(ids))} received in "
            f"{last - started:.2f} s = {rate:,.0f} deliveries/s (single triggers: {single_rate:,.0f}/s, "
            f"x{rate / single_rate:.1f}; trigger loop {events / (triggered - started):,.0f} events/s); "
            f"lost {lost}, duplicated {duplicated}",
            flush=True,
        )
        print(meter.line(len(set(ids))), flush=True)
        failed += lost > 0 or duplicated > 0

        # 2. Latency at light load: 10 events/s.
        receiver.reset()
        sent_at: dict[int, float] = {}
        base = 1_000_000
        for index in range(latency_events):
            tick = time.time()
            trigger_event(organization=organization, event="application.created", payload={"seq": base + index})
            sent_at[base + index] = time.time()  # committed and enqueued
            time.sleep(max(0.1 - (time.time() - tick), 0))
        records = receiver.wait(latency_events, timeout=60)
        latencies = [(at - sent_at[seq]) * 1000 for at, _, seq in records if seq in sent_at]
        lost = latency_events - len({r[1] for r in records})
        if latencies:
            print(
                f"latency at 10 events/s ({len(latencies)} events): p50 {percentile(latencies, 50):.1f} ms, "
                f"p95 {percentile(latencies, 95):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
                f"mean {statistics.mean(latencies):.1f} ms; lost {lost}",
                flush=True,
            )
        failed += lost > 0

        # 3. Fan-out: one event to 1,000 webhooks.
        Webhook.objects.filter(pk=webhook.pk).update(is_active=False)
        Webhook.objects.bulk_create(
            [
                Webhook(
                    organization=organization,
                    name=f"fan-{i}",
                    url=receiver.url,
                    events=["job.created"],
                    secret=webhook.secret,
                )
                for i in range(1000)
            ]
        )
        receiver.reset()
        started = time.time()
        trigger_event(organization=organization, event="job.created", payload={"seq": 0})
        records = receiver.wait(1000, timeout=120)
        last = max((r[0] for r in records), default=time.time())
        received = len({r[1] for r in records})
        print(f"fan-out: 1 event -> {received}/1000 webhooks in {last - started:.2f} s", flush=True)
        failed += received < 1000
    finally:
        cluster.send_signal(signal.SIGTERM)  # the main process only
        try:
            cluster.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
        receiver.stop()
    trigger_path(organization, receiver.url, events)
    return 1 if failed else 0


def trigger_path(organization, url: str, events: int) -> None:
    """Events/s of the trigger path alone (the cluster is stopped): each event gets its delivery."""
    from webhooks.models import Webhook
    from webhooks.services import trigger_event, trigger_events, webhook_create

    Webhook.objects.filter(organization=organization).update(is_active=False)
    webhook_create(organization=organization, name="trigger-path", url=url, events=["offer.accepted"])
    count = max(events, 1000)

    def timed(label: str, run) -> float:
        started = time.perf_counter()
        run()
        rate = count / (time.perf_counter() - started)
        print(f"trigger path, {label}: {count} events in {count / rate:.2f} s = {rate:,.0f} events/s", flush=True)
        return rate

    def payload(seq: int) -> dict:
        return {"offer_id": f"off_{seq}", "application_id": f"app_{seq}", "accepted_at": "2026-03-02T10:15:00Z"}

    def single(keyed: bool, offset: int):
        def run():
            for seq in range(offset, offset + count):
                key = f"bench/{seq}" if keyed else None
                trigger_event(
                    organization=organization, event="offer.accepted", payload=payload(seq), idempotency_key=key
                )

        return run

    def batches(size: int, offset: int):
        def run():
            for first in range(offset, offset + count, size):
                batch = [
                    {"event": "offer.accepted", "payload": payload(seq), "idempotency_key": f"bench/{seq}"}
                    for seq in range(first, min(first + size, offset + count))
                ]
                trigger_events(organization=organization, events=batch)

        return run

    one = timed("trigger_event", single(False, 10_000_000))
    timed("trigger_event with an idempotency key", single(True, 11_000_000))
    timed("trigger_events, batches of 100 with keys", batches(100, 12_000_000))
    many = timed("trigger_events, batches of 1,000 with keys", batches(1000, 13_000_000))
    print(f"trigger path: batches of 1,000 x{many / one:.1f} single triggers (goal >= 10,000 events/s)", flush=True)
    # 10 subscribed webhooks, 3 with a content filter (one rejects every event): the filters'
    # cost at fan-out (evaluated in the statement on PostgreSQL).
    filters = [{"data.offer_id": {"$startsWith": "off_"}}, {"data.accepted_at": {"$gte": "2026"}}, {"type": "x"}]
    for n, filter_ in enumerate([None] * 6 + filters):
        webhook_create(
            organization=organization, name=f"trigger-path-{n}", url=url, events=["offer.accepted"], filter=filter_
        )
    timed("trigger_event, 10 webhooks (3 filtered)", single(False, 14_000_000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 3000)))
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--peer", action="store_true", help="django-webhook after the PostgreSQL run, and the ratio")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if args.child:
        return child(args.child, args.events, args.latency_events, args.result_file)
    if args.peer and args.only == "sqlite":
        parser.error("--peer compares with the PostgreSQL + Redis figure: drop --only sqlite")
    failed = 0
    for name in ["sqlite", "postgres"]:
        if args.only and args.only != name:
            continue
        if not (args.peer and name == "postgres"):
            failed += run_scenario(name, args) != 0
            continue
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            failed += run_scenario(name, args, result.name) != 0
            text = Path(result.name).read_text()
        if not text:
            print("ours: no single-trigger figure (above); django-webhook not measured", flush=True)
            failed += 1
            continue
        failed += run_peer(args, json.loads(text)) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
