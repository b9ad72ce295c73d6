#!/usr/bin/env python
"""Health-check run benchmark (`make bench`, or `python bench/health.py`).

Creates a fresh database with N integrations (provider `custom`, API key) whose
`health_check_url` is a local server answering every request after 200 ms
(bench/receiver.py with a delay), then times one run over all of them (`health_run`, the same
service the scheduled task and `run_health_checks` call) and checks every integration was
checked once and found healthy. Goal (docs/API.md §7): 1,000 integrations in at most 30 s.

Options: --integrations N (default 1000), --delay SECONDS (default 0.2),
--only sqlite|postgres (default: sqlite only; postgres needs BENCH_POSTGRES_URL or
postgres://root@127.0.0.1:5432/bench_health, dropped and re-created).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

PYTHON = sys.executable
GOAL_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scenario_env(name: str) -> dict[str, str]:
    extra = {"ALLOW_PRIVATE_URLS": "true"}  # the provider is a local server
    return _common.scenario_env(name, bench="health", extra=extra)


def run_scenario(name: str, args) -> int:
    env = scenario_env(name)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    cmd = [PYTHON, __file__, "--child", name, "--integrations", str(args.integrations), "--delay", str(args.delay)]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the slow server did not start")


def child(name: str, count: int, delay: float) -> int:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from health import app_settings
    from health.models import HealthCheck
    from health.services import health_run
    from integrations.models import Integration
    from organizations.services import organization_create

    port = free_port()
    server = subprocess.Popen([PYTHON, str(ROOT / "bench" / "receiver.py"), str(port), str(delay)])
    try:
        wait_for_port(port)
        organization = organization_create(slug=f"bench-health-{name}")
        url = f"http://127.0.0.1:{port}/ping"
        Integration.objects.bulk_create(
            [
                Integration(
                    organization=organization,
                    name=f"bench {n}",
                    provider="custom",
                    auth_type=Integration.AuthType.API_KEY,
                    config={"health_check_url": url, "category": "communication"},
                    credentials={"api_key": f"key-{n}"},
                    status=Integration.Status.ACTIVE,
                )
                for n in range(count)
            ],
            batch_size=500,
        )
        label = "SQLite" if name == "sqlite" else "PostgreSQL"
        print(
            f"--- {label}: {count} integrations, provider answering in {delay * 1000:.0f} ms, "
            f"concurrency {app_settings.concurrency()}, batch {app_settings.batch_size()} ---",
            flush=True,
        )
        started = time.perf_counter()
        summary = health_run()
        elapsed = time.perf_counter() - started
        checked = HealthCheck.objects.values("integration").distinct().count()
        healthy = HealthCheck.objects.filter(status="healthy").count()
        print(
            f"health run: {len(summary.checks)} checks in {elapsed:.2f} s = {len(summary.checks) / elapsed:,.0f} "
            f"checks/s ({checked} integrations checked once each, {healthy} healthy; "
            f"serially this would take {count * delay:,.0f} s; goal <= {GOAL_SECONDS:.0f} s)",
            flush=True,
        )
        ok = checked == count and healthy == count and len(summary.checks) == count and elapsed <= GOAL_SECONDS
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--integrations", type=int, default=int(os.environ.get("BENCH_INTEGRATIONS", 1000)))
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--only", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if args.child:
        return child(args.child, args.integrations, args.delay)
    return 1 if run_scenario(args.only, args) != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
