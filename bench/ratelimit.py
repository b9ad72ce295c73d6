#!/usr/bin/env python
"""Rate-limiter accuracy (`make bench`, or `python bench/ratelimit.py`).

Two processes share one integration's bucket of 50 calls per second (burst 1) and take
slots from it as fast as it allows for 20 s (500 calls each). Every granted slot's time is
recorded; the figure is the most calls in any 1-second window (sliding, starting at every
call) against the budget. Goal (issue 12): no window more than 5% over, on both backends:
the database (SQLite file, and PostgreSQL) and Redis.

Options: --rate N (50), --seconds S (20), --only sqlite|postgres|redis (default: all three;
postgres needs BENCH_POSTGRES_URL or postgres://root@127.0.0.1:5432/bench_ratelimit, dropped
and re-created; redis uses BENCH_REDIS_URL, default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

PYTHON = sys.executable
GOAL_OVER = 0.05
SCENARIOS = ("sqlite", "postgres", "redis")


def scenario_env(name: str) -> dict[str, str]:
    if name == "redis":
        env = _common.scenario_env("sqlite", bench="ratelimit", extra={})
        env["INTEGRATIONS_RATE_LIMIT_REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
        return env
    env = _common.scenario_env(name, bench="ratelimit", extra={})
    env.pop("REDIS_URL", None)
    env["INTEGRATIONS_RATE_LIMIT_REDIS_URL"] = ""
    return env


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def setup_child(rate: float) -> int:
    """Create the organization and the integration; print its id."""
    django_setup()
    from integrations import ratelimit
    from integrations.models import Integration
    from organizations.services import organization_create

    organization = organization_create(slug="bench-ratelimit")
    integration = Integration.objects.create(
        organization=organization,
        name="bench",
        provider="custom",
        auth_type=Integration.AuthType.API_KEY,
        config={"rate_limit": {"requests": rate, "per_seconds": 1}},
        credentials={"api_key": "bench"},
        status=Integration.Status.ACTIVE,
    )
    ratelimit.reset(integration)
    print(integration.pk)
    return 0


def worker_child(integration_id: str, calls: int, start_at: float, out: str) -> int:
    django_setup()
    from integrations import ratelimit
    from integrations.models import Integration

    integration = Integration.objects.get(pk=integration_id)
    backend = ratelimit.backend()
    if isinstance(backend, ratelimit.RedisBackend):
        backend.client.ping()
    granted: list[float] = []
    overhead: list[float] = []
    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(calls):
        before = time.perf_counter()
        waited_ms = ratelimit.acquire(integration, max_wait=120)
        overhead.append((time.perf_counter() - before) * 1000 - waited_ms)
        granted.append(time.time())
    Path(out).write_text(json.dumps({"granted": granted, "overhead_ms": overhead}))
    return 0


def max_in_window(times: list[float], window: float) -> int:
    best, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def run_scenario(name: str, rate: float, seconds: float) -> bool:
    env = scenario_env(name)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    command = [PYTHON, __file__, "--setup", "--rate", str(rate)]
    setup = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    integration_id = setup.stdout.strip().splitlines()[-1]
    calls_each = round(rate * seconds / 2)
    start_at = time.time() + 5
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"worker-{n}.json" for n in range(2)]
        workers = [
            subprocess.Popen(
                [PYTHON, __file__, "--worker", integration_id, str(calls_each), str(start_at), str(out)],
                cwd=ROOT,
                env=env,
            )
            for out in outs
        ]
        if any(worker.wait(seconds * 4 + 60) for worker in workers):
            print(f"  {name}: a worker failed")
            return False
        results = [json.loads(out.read_text()) for out in outs]
    granted = sorted(t for result in results for t in result["granted"])
    overhead = sorted(ms for result in results for ms in result["overhead_ms"])
    peak = max_in_window(granted, 1.0)
    over = (peak - rate) / rate
    span = granted[-1] - granted[0]
    ok = over <= GOAL_OVER and len(granted) == 2 * calls_each
    backend = "Redis" if name == "redis" else f"database ({name})"
    print(
        f"  {backend:20} {len(granted)} calls in {span:.2f} s ({(len(granted) - 1) / span:.1f}/s); "
        f"max in any 1 s window {peak} vs budget {rate:g} ({over:+.1%}; goal <= +{GOAL_OVER:.0%}) "
        f"{'OK' if ok else 'MISSED'}; limiter time per call p50 {overhead[len(overhead) // 2]:.2f} ms, "
        f"p99 {overhead[int(len(overhead) * 0.99)]:.2f} ms"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--only", choices=SCENARIOS)
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if args.setup:
        return setup_child(args.rate)
    if args.worker:
        integration_id, calls, start_at, out = args.worker
        return worker_child(integration_id, int(calls), float(start_at), out)
    print(f"Two processes share one bucket of {args.rate:g} calls/s for {args.seconds:g} s:")
    failed = 0
    for name in [args.only] if args.only else SCENARIOS:
        problem = unavailable(name)
        if problem:
            print(f"  {name}: skipped ({problem})")
            failed += bool(args.only)
            continue
        failed += not run_scenario(name, args.rate, args.seconds)
    return 1 if failed else 0


def unavailable(name: str) -> str:
    """Why a scenario's service cannot be reached, or "" (PostgreSQL, Redis may be absent)."""
    if name == "redis":
        import redis

        url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            return f"{url}: {error}"
    if name == "postgres":
        url = os.environ.get("BENCH_POSTGRES_URL", "postgres://root@127.0.0.1:5432/bench_ratelimit")
        admin = url.rsplit("/", 1)[0] + "/postgres"
        try:
            subprocess.run(["psql", admin, "-qtc", "SELECT 1"], check=True, capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as error:
            return f"{admin}: {error}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
