#!/usr/bin/env python
"""Webhook isolation benchmark (`make bench`, or `python bench/isolation.py`).

PostgreSQL + Redis broker, a real django-q2 cluster with 2 workers, 10 webhooks subscribed
to one event type, events triggered at 50/s for 60 s (500 deliveries/s), twice:

1. all ten webhooks point at the local receiver (bench/receiver.py);
2. one of them points at a receiver that accepts connections and never answers (each of
   its requests ends with the 15 s timeout, `WEBHOOKS_TIMEOUT`), the other nine as before.

It prints, for each run, the p50/p99 from trigger (committed) to receipt over the
deliveries of the nine webhooks that stay healthy, and lost/duplicated deliveries. Goal
(issue "Webhook contracts"): p99 <= 100 ms in run 2.

Options: --seconds N (default 60), --rate N events/s (default 50).
PostgreSQL: BENCH_POSTGRES_URL (default postgres://root@127.0.0.1:5432/bench_isolation; the
database is dropped and re-created), Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_webhooks", ROOT / "bench" / "webhooks.py")
assert _spec is not None and _spec.loader is not None
bench_webhooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_webhooks)

PYTHON = sys.executable
WEBHOOKS = 10


class BlackHole:
    """Accepts connections, reads what comes, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)  # held open, never read to the end, never answered


def child(seconds: float, rate: float) -> int:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from organizations.services import organization_create
    from webhooks import app_settings as webhook_settings
    from webhooks.models import Webhook
    from webhooks.services import trigger_event, webhook_create

    print(
        f"\n--- PostgreSQL + Redis broker: 2 workers, {WEBHOOKS} webhooks, {rate:g} events/s for {seconds:g} s, "
        f"timeout {webhook_settings.request_timeout():g} s ---",
        flush=True,
    )
    receiver = bench_webhooks.Receiver()
    hole = BlackHole()
    organization = organization_create(slug="bench-isolation")
    webhooks = [
        webhook_create(organization=organization, name=f"w{i}", url=receiver.url, events=["application.created"])
        for i in range(WEBHOOKS)
    ]
    cluster = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, start_new_session=True)
    seq = 0
    results = {}
    failed = 0
    try:
        trigger_event(organization=organization, event="application.created", payload={"seq": 0})
        if len(receiver.wait(WEBHOOKS, 60)) < WEBHOOKS:
            raise RuntimeError("the cluster delivered nothing within 60 s")
        for label, hanging in (("all ten healthy", False), ("one never answers", True)):
            if hanging:
                Webhook.objects.filter(pk=webhooks[0].pk).update(url=hole.url)
            receiver.reset()
            sent_at: dict[int, float] = {}
            started = time.time()
            total = int(seconds * rate)
            for index in range(total):
                seq += 1
                trigger_event(organization=organization, event="application.created", payload={"seq": seq})
                sent_at[seq] = time.time()  # committed and enqueued
                time.sleep(max(started + (index + 1) / rate - time.time(), 0))
            healthy = WEBHOOKS - 1 if hanging else WEBHOOKS
            records = receiver.wait(total * healthy, timeout=60)
            records = [r for r in records if r[2] in sent_at]
            latencies = [(at - sent_at[s]) * 1000 for at, _, s in records]
            ids = [r[1] for r in records]
            lost = total * healthy - len(set(ids))
            duplicated = len(ids) - len(set(ids))
            p50 = bench_webhooks.percentile(latencies, 50) if latencies else float("nan")
            p99 = bench_webhooks.percentile(latencies, 99) if latencies else float("nan")
            results[label] = p99
            print(
                f"{label}: {len(set(ids))} deliveries to {healthy} healthy webhooks, trigger -> receipt "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (over those received); not received 60 s after the last "
                f"trigger {lost}, duplicated {duplicated}",
                flush=True,
            )
            failed += lost > 0 or duplicated > 0
        print(
            f"isolation: the nine healthy webhooks' p99 {results['one never answers']:.1f} ms with one never "
            f"answering vs {results['all ten healthy']:.1f} ms with all ten healthy (goal <= 100 ms)",
            flush=True,
        )
    finally:
        cluster.send_signal(signal.SIGTERM)  # the main process only
        try:
            cluster.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
        receiver.stop()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if args.child:
        return child(args.seconds, args.rate)
    extra = {"ALLOW_PRIVATE_URLS": "true", "Q_WORKERS": "2", "Q_CLUSTER_NAME": "bench-isolation"}
    env = _common.scenario_env("postgres", bench="isolation", extra=extra, postgres_redis=True)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    cmd = [PYTHON, __file__, "--child", "--seconds", str(args.seconds), "--rate", str(args.rate)]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
