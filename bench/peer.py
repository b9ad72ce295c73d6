#!/usr/bin/env python
"""django-webhook measured like our end-to-end figure (`make bench`, or `python bench/peer.py`;
`python bench/webhooks.py --only postgres --peer` prints both and the ratio in one run).

django-webhook (PyPI `django-webhook`, Django + Celery) sends a webhook from a model's
`post_save` signal: the signal publishes a Celery task (`fire_webhook`) per webhook, and a
Celery worker sends it with `requests`. This bench runs it in the conditions of
bench/webhooks.py's single-trigger throughput: PostgreSQL (its own database, dropped and
re-created), Redis as the broker, 2 delivering processes (Celery's prefork pool with
concurrency 2, beside our 2 django-q2 workers), one triggering process creating N model
instances one by one (one webhook subscribed to their creation), the same local receiver
(bench/receiver.py). It measures first save -> N-th receipt and counts lost (never received)
and duplicated (received twice) deliveries.

The project (bench/_peer/) is configured as django-webhook's docs say, its defaults kept:
each request is logged as a `WebhookEvent` row (STORE_EVENTS), the webhooks of a topic are
cached for a minute (USE_CACHE), one signing secret. Its packages (PINS) live in a virtualenv
of their own (BENCH_PEER_VENV, default .bench-venv-peer/, ignored by git), never in
requirements*.txt; when pip cannot install them the bench says so and skips.

Options: --events N (default 3000), --concurrency C (Celery processes, default 2), --timeout S.
PostgreSQL: BENCH_PEER_POSTGRES_URL (default: BENCH_POSTGRES_URL's database name + "_peer",
dropped and re-created); broker: BENCH_REDIS_URL (default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "bench" / "_peer"
sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402

# django-webhook 0.0.15 (the latest) and what pip resolved for it beside our Django, psycopg,
# requests and redis versions (requirements.txt), all pinned.
PINS = [
    "django-webhook==0.0.15",
    "celery==5.7.0",
    "kombu==5.7.0",
    "billiard==4.3.2",
    "amqp==5.4.2",
    "vine==5.1.0",
    "click==8.5.1",
    "click-didyoumean==0.3.1",
    "click-plugins==1.1.1.2",
    "click-repl==0.4.1",
    "prompt_toolkit==3.0.53",
    "wcwidth==0.9.4",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "tzlocal==5.4.5",
    "packaging==26.3",
    "django-model-utils==4.5.1",
    "Django==5.2.19",
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
    "psycopg[binary]==3.3.9",
    "psycopg-binary==3.3.9",
    "typing_extensions==4.16.0",
    "redis==8.1.0",
    "requests==2.34.2",
    "urllib3==2.8.0",
    "idna==3.20",
    "charset-normalizer==3.5.3",
    "certifi==2026.10.19.post1",
]
TOPIC = "peerapp.Order/create"


class Count(NamedTuple):
    received: int  # distinct triggers received
    lost: int  # triggers never received
    duplicated: int  # receipts beyond the first of a trigger
    last: float | None  # receive time of the last receipt of a trigger


def count_deliveries(records: list, events: int) -> Count:
    """Counts the receiver's records `(received_at, webhook_id, seq)` of triggers 0..events-1
    (the warm-up's and anything else's `seq` are ignored)."""
    ours = [(at, seq) for at, _, seq in records if 0 <= seq < events]
    received = len({seq for _, seq in ours})
    return Count(
        received=received,
        lost=events - received,
        duplicated=len(ours) - received,
        last=max((at for at, _ in ours), default=None),
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 3000)))
    parser.add_argument("--concurrency", type=int, default=2, help="Celery prefork processes (default 2)")
    parser.add_argument("--timeout", type=float, help="seconds to wait for the deliveries (default max(120, N/20))")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 1 or args.concurrency < 1:
        parser.error("--events and --concurrency must be positive")
    if args.timeout is None:
        args.timeout = max(120.0, args.events / 20)
    return args


def peer_database_url(environ: dict[str, str] | os._Environ[str]) -> str:
    """BENCH_PEER_POSTGRES_URL, or BENCH_POSTGRES_URL's database with `_peer` appended."""
    if environ.get("BENCH_PEER_POSTGRES_URL"):
        return environ["BENCH_PEER_POSTGRES_URL"]
    url = environ.get("BENCH_POSTGRES_URL", "postgres://root@127.0.0.1:5432/bench_webhooks")
    return url + "_peer"


def venv_dir() -> Path:
    return Path(os.environ.get("BENCH_PEER_VENV", ROOT / ".bench-venv-peer"))


def ensure_venv(venv: Path) -> str | None:
    """Creates `venv` with PINS installed (again when PINS changed). Returns why it could
    not, or None when the virtualenv is ready."""
    stamp = venv / "bench-pins.txt"
    wanted = "\n".join(PINS) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return None
    print(f"installing django-webhook and Celery into {venv} (pinned, once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        pip = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        return f"could not create the virtualenv: {error}"
    if pip.returncode != 0:
        last = [line for line in pip.stderr.splitlines() if line.strip()][-3:]
        return "pip could not install " + " ".join(PINS[:2]) + ": " + " / ".join(last)
    stamp.write_text(wanted)
    return None


def load_average() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def measure(events: int, *, concurrency: int = 2, timeout: float | None = None) -> dict | None:
    """Parent side: the virtualenv, a fresh database, then this file as the measuring child
    under the virtualenv's Python. Returns the child's figures, or None when skipped."""
    print(f"\n--- django-webhook 0.0.15: PostgreSQL + Redis broker, Celery prefork x{concurrency} ---", flush=True)
    venv = venv_dir()
    reason = ensure_venv(venv)
    if reason:
        print(f"django-webhook: skipped, {reason}", flush=True)
        return None
    python = str(venv / "bin" / "python")
    url = peer_database_url(os.environ)
    _common.recreate_database(url)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "peerproj.settings",
        "PYTHONPATH": str(PROJECT),
        "PEER_DATABASE_URL": url,
        "PEER_BROKER_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"),
        # django-webhook reads its topics in AppConfig.ready(); Celery warns of running as root.
        "PYTHONWARNINGS": "ignore:Accessing the database during app initialization,"
        "ignore:You're running the worker with superuser privileges",
    }
    subprocess.run([python, "-m", "django", "migrate", "--run-syncdb", "-v0"], cwd=PROJECT, env=env, check=True)
    # Tasks left in the broker by an earlier, interrupted run would be counted as duplicates.
    subprocess.run(
        [str(venv / "bin" / "celery"), "-A", "peerproj", "purge", "-f"],
        cwd=PROJECT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        cmd = [python, __file__, "--child", "--events", str(events), "--concurrency", str(concurrency)]
        cmd += ["--timeout", str(timeout or max(120.0, events / 20)), "--result-file", result.name]
        returncode = subprocess.run(cmd, cwd=PROJECT, env=env).returncode
        text = Path(result.name).read_text()
    figures = json.loads(text) if text else {}
    figures["failed"] = returncode != 0
    return figures


def child(args: argparse.Namespace) -> int:
    """Runs under the virtualenv's Python with the peer project's settings."""
    import secrets

    import django

    django.setup()
    from django_webhook.models import Webhook, WebhookEvent, WebhookSecret, WebhookTopic
    from peerapp.models import Order

    spec = importlib.util.spec_from_file_location("bench_webhooks", ROOT / "bench" / "webhooks.py")
    assert spec is not None and spec.loader is not None
    bench_webhooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_webhooks)

    receiver = bench_webhooks.Receiver()  # bench/receiver.py, as for ours
    webhook = Webhook.objects.create(url=receiver.url)
    webhook.topics.set([WebhookTopic.objects.get(name=TOPIC)])
    WebhookSecret.objects.create(webhook=webhook, token=secrets.token_urlsafe(32))
    celery = str(Path(sys.executable).parent / "celery")
    pool = ["--pool", "prefork", "--concurrency", str(args.concurrency)]
    quiet = ["--loglevel", "WARNING", "--hostname", f"bench-peer-{os.getpid()}@%h"]
    worker = subprocess.Popen([celery, "-A", "peerproj", "--quiet", "worker", *pool, *quiet], start_new_session=True)
    failed = 0
    try:
        # Warm up: the worker is up and this process's webhook lookup is cached.
        Order.objects.create(seq=-1)
        deadline = time.time() + 60
        while not receiver.records():
            if worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {worker.returncode}")
            if time.time() > deadline:
                raise RuntimeError("the Celery worker delivered nothing within 60 s")
            time.sleep(0.2)
        receiver.reset()
        load_before = load_average()

        started = time.time()
        for seq in range(args.events):
            Order.objects.create(seq=seq)
        triggered = time.time()
        count = count_deliveries(receiver.wait(args.events, timeout=args.timeout), args.events)
        seconds = (count.last or time.time()) - started
        rate = count.received / seconds
        time.sleep(1)  # the last tasks' WebhookEvent status updates come after their sends
        logged = WebhookEvent.objects.filter(webhook=webhook, object__object__seq__gte=0).count()
        figures = {
            "events": args.events,
            "received": count.received,
            "lost": count.lost,
            "duplicated": count.duplicated,
            "seconds": round(seconds, 3),
            "rate": rate,
            "trigger_rate": args.events / (triggered - started),
            "concurrency": args.concurrency,
            "event_log_rows": logged,
            "load_average": f"{load_before} -> {load_average()}",
        }
        print(
            f"django-webhook throughput: {args.events} saves -> {count.received} received in {seconds:.2f} s = "
            f"{rate:,.0f} deliveries/s (trigger loop {figures['trigger_rate']:,.0f} saves/s); lost {count.lost}, "
            f"duplicated {count.duplicated}; {logged} WebhookEvent rows; load average {figures['load_average']}",
            flush=True,
        )
        failed += count.lost > 0 or count.duplicated > 0
        if args.result_file:
            Path(args.result_file).write_text(json.dumps(figures))
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown of the main process
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        receiver.stop()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    if args.child:
        return child(args)
    figures = measure(args.events, concurrency=args.concurrency, timeout=args.timeout)
    if figures is None:
        return 0  # skipped, and said why
    return 1 if figures["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
