#!/usr/bin/env python
"""Provider client overhead per call (`make bench`, or `python bench/client.py`).

A local threaded HTTP/1.1 server (keep-alive, a tiny JSON answer) runs in its own process on
127.0.0.1. One process calls it N times with a raw `requests.Session` (`get(...).json()`),
N times with one whose `trust_env` is off (no proxy and netrc lookups per request, as the
client's hardened session: the tighter baseline), and N times with
`integration_client(integration).get("ping")` for an API-key `custom` integration whose
`api_base_url` points at the server (ALLOW_PRIVATE_URLS on), with the call log on (the
hooks of integrations/apps.py, background flush) and the rate limits on with a generous
limit (1,000,000 calls/s). The three alternate in blocks of 100, after a warm-up of 100
each, so drift hits all alike. Figures: median and p95 per call for each, and the client's
overhead (median minus median) over both baselines. Goal (issue 12): at most 1 ms over raw
`requests`. The call log is checked afterwards: one row per client call.

Scenarios (one process each, an SQLite file database): `off` (rate limits off: the client
and the call log alone), `database` (limits on, buckets in the database) and `redis`
(limits on, buckets in Redis at BENCH_REDIS_URL, default redis://127.0.0.1:6379/5; skipped
when unreachable). Options: --calls N (2000), --only off|database|redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

PYTHON = sys.executable
GOAL_OVERHEAD_MS = 1.0
SCENARIOS = ("off", "database", "redis")
BLOCK = 100
WARMUP = 100
BODY = b'{"ok":true}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # One write per answer, sent at once (head and body in separate segments would wait on
    # the client's delayed ACK: 40 ms a call).
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve() -> int:
    """The server process: prints its port, serves until its stdin closes."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


def scenario_env(name: str) -> dict[str, str]:
    env = _common.scenario_env("sqlite", bench="client", extra={"ALLOW_PRIVATE_URLS": "true"})
    env["INTEGRATIONS_RATE_LIMITS_ENABLED"] = "false" if name == "off" else "true"
    env["INTEGRATIONS_CALL_LOG_ENABLED"] = "true"
    env["INTEGRATIONS_CALL_LOG_BACKGROUND"] = "true"
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    env["INTEGRATIONS_RATE_LIMIT_REDIS_URL"] = redis_url if name == "redis" else ""
    return env


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(port: int, calls: int) -> int:
    """The measuring process: prints one JSON line of figures."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import requests

    from integrations import ratelimit
    from integrations.client import integration_client
    from integrations.models import Integration, ProviderCall
    from organizations.services import organization_create

    organization = organization_create(slug="bench-client")
    integration = Integration.objects.create(
        organization=organization,
        name="bench",
        provider="custom",
        auth_type=Integration.AuthType.API_KEY,
        config={
            "api_base_url": f"http://127.0.0.1:{port}/",
            "category": "hris",
            "rate_limit": {"requests": 1_000_000, "per_seconds": 1},
        },
        credentials={"api_key": "bench"},
        status=Integration.Status.ACTIVE,
    )
    ratelimit.reset(integration)
    url = f"http://127.0.0.1:{port}/ping"
    raw_session = requests.Session()
    bare_session = requests.Session()
    bare_session.trust_env = False  # no proxy/netrc lookups per request, as our hardened session
    client = integration_client(integration)

    def raw_call() -> None:
        raw_session.get(url, headers={"Accept": "application/json"}, timeout=5).json()

    def bare_call() -> None:
        bare_session.get(url, headers={"Accept": "application/json"}, timeout=5).json()

    def client_call() -> None:
        client.get("ping")

    def timed(call, count: int, into: list[float]) -> None:
        for _ in range(count):
            before = time.perf_counter()
            call()
            into.append((time.perf_counter() - before) * 1000)

    warm: list[float] = []
    timed(raw_call, WARMUP, warm)
    timed(bare_call, WARMUP, warm)
    timed(client_call, WARMUP, warm)
    raw: list[float] = []
    bare: list[float] = []
    via_client: list[float] = []
    started = time.perf_counter()
    for block in range(0, calls, BLOCK):
        size = min(BLOCK, calls - block)
        timed(raw_call, size, raw)
        timed(bare_call, size, bare)
        timed(client_call, size, via_client)
    elapsed = time.perf_counter() - started
    expected = WARMUP + calls
    deadline = time.monotonic() + 10  # the background writer flushes every second
    logged = 0
    while time.monotonic() < deadline:
        logged = ProviderCall.objects.filter(integration=integration).count()
        if logged >= expected:
            break
        time.sleep(0.2)
    print(
        json.dumps(
            {
                "raw": [statistics.median(raw), percentile(raw, 0.95)],
                "bare": [statistics.median(bare), percentile(bare, 0.95)],
                "client": [statistics.median(via_client), percentile(via_client, 0.95)],
                "logged": logged,
                "expected_logged": expected,
                "elapsed": elapsed,
            }
        )
    )
    return 0


def run_scenario(name: str, calls: int) -> bool:
    env = scenario_env(name)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen([PYTHON, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        child = subprocess.run(
            [PYTHON, __file__, "--measure", str(port), "--calls", str(calls)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stdin.close()
        server.wait(10)
    if child.returncode:
        print(f"  {name}: the measuring process failed:\n{child.stderr[-2000:]}")
        return False
    if child.stderr.strip():
        print(f"  {name}: the measuring process said:\n{child.stderr[-2000:]}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    (raw_p50, raw_p95), (client_p50, client_p95) = figures["raw"], figures["client"]
    bare_p50, bare_p95 = figures["bare"]
    overhead = client_p50 - raw_p50
    logged_ok = figures["logged"] == figures["expected_logged"]
    ok = overhead <= GOAL_OVERHEAD_MS and logged_ok
    limits = {"off": "rate limits off", "database": "limits in the database", "redis": "limits in Redis"}[name]
    print(
        f"  {limits:23} p50 / p95 per call: raw requests {raw_p50:.2f} / {raw_p95:.2f} ms, "
        f"raw without trust_env {bare_p50:.2f} / {bare_p95:.2f} ms, client {client_p50:.2f} / {client_p95:.2f} ms; "
        f"overhead p50 {overhead:+.2f} ms vs raw (goal <= {GOAL_OVERHEAD_MS:g} ms) {'OK' if ok else 'MISSED'}, "
        f"{client_p50 - bare_p50:+.2f} ms vs raw without trust_env; "
        f"call log {figures['logged']}/{figures['expected_logged']} rows; {figures['elapsed']:.1f} s"
    )
    return ok


def unavailable(name: str) -> str:
    if name != "redis":
        return ""
    import redis

    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        return f"{url}: {error}"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--only", choices=SCENARIOS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if args.serve:
        return serve()
    if args.measure:
        return measure(args.measure, args.calls)
    print(f"{args.calls} calls to a local server, raw requests vs the provider client (call log on):")
    failed = 0
    for name in [args.only] if args.only else SCENARIOS:
        problem = unavailable(name)
        if problem:
            print(f"  {name}: skipped ({problem})")
            failed += bool(args.only)
            continue
        failed += not run_scenario(name, args.calls)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
