"""gunicorn settings: `gunicorn config.wsgi -c config/gunicorn.py` (README "Running in production").

Metrics in multiprocess mode (docs/METRICS.md): every worker writes its counters and
histograms into `PROMETHEUS_MULTIPROC_DIR`, and `/metrics`, served by any worker, sums them.
This file sets that variable before any worker imports prometheus-client (a fresh directory
when it is unset), clears the values of a previous run when the server starts, and marks a
worker's files dead when it exits. Start the django-q2 cluster with the same
`PROMETHEUS_MULTIPROC_DIR` (after gunicorn, which clears it) so its workers' counts add up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threaded workers keep client connections alive (the sync worker closes every one after its
# answer, so each request pays a TCP connect and accept) and overlap one request's database
# and Redis waits with another's work: with it `bench/api.py` served `POST /api/events/` at
# 138-276 req/s against 53-100 for sync workers, back to back at load 5-8 (as fast as sync on a
# nearly idle machine in one run each; README "Scale", bench/README.md). Each thread holds
# its own database connection (CONN_MAX_AGE): workers x threads connections per host. `-k`, `--threads` and
# `--keep-alive` on the command line override these.
worker_class = "gthread"
threads = 4
keepalive = 5

multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="prometheus-multiproc-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir


def clear_multiproc_dir(directory: str) -> None:
    """Remove a previous run's value files (counters restart at 0, as Prometheus expects)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def on_starting(server) -> None:
    clear_multiproc_dir(multiproc_dir)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
