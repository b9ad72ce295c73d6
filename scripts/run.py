#!/usr/bin/env python
"""Run the development web server and a django-q2 cluster together until Ctrl-C.

Each child runs in its own session, so the terminal's Ctrl-C reaches only this
supervisor. On shutdown the cluster gets SIGTERM on its main process only (a signal to
its whole process group can deadlock it, docs/QUEUE.md); the web server is stopped
with its process group (runserver's autoreloader has a child). Both children get the same
DJANGO_SETTINGS_MODULE: the one set, else manage.py's default (development only when DEBUG
is true in the environment or `.env`, as `make run` arranges). Both also get the same
PROMETHEUS_MULTIPROC_DIR, cleared at start, so `/metrics` counts both (docs/METRICS.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STOP_TIMEOUT = 20


def metrics_dir() -> str:
    """The prometheus-client multiprocess directory both children write into, so that
    `/metrics` sums the web server's and the cluster's workers (docs/METRICS.md): the one
    set in PROMETHEUS_MULTIPROC_DIR, else a fresh one; a previous run's values are removed."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="prometheus-multiproc-")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return directory


def children_env() -> dict[str, str]:
    from config.environment import default_settings_module

    module = os.environ.get("DJANGO_SETTINGS_MODULE") or default_settings_module()
    return {**os.environ, "DJANGO_SETTINGS_MODULE": module, "PROMETHEUS_MULTIPROC_DIR": metrics_dir()}


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603


def stop(proc: subprocess.Popen, *, group: bool) -> None:
    if proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()

    python = sys.executable
    env = children_env()
    web = start([python, "manage.py", "runserver", f"{args.host}:{args.port}"], env)
    cluster = start([python, "manage.py", "qcluster"], env)
    print(
        f"Serving http://{args.host}:{args.port}/ (admin: /admin/, API docs: /api/docs/) "
        f"with a django-q2 cluster. Ctrl-C stops both.",
        flush=True,
    )

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        if web.poll() is not None or cluster.poll() is not None:
            print("A process exited unexpectedly; stopping.", file=sys.stderr, flush=True)
            exit_code = 1
            break
        time.sleep(0.2)

    print("Stopping the cluster and the web server...", flush=True)
    stop(cluster, group=False)
    stop(web, group=True)
    print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
