"""Real processes for the multiprocess metrics tests: gunicorn (config/gunicorn.py) and the
django-q2 cluster writing into one PROMETHEUS_MULTIPROC_DIR, and a Prometheus server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.cluster import ROOT, ClusterProcess

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Gunicorn:
    """`gunicorn config.wsgi -c config/gunicorn.py` on a socket bound here to 127.0.0.1:0."""

    def __init__(self, env: dict[str, str], *, workers: int = 2):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        fd = self.sock.fileno()
        os.set_inheritable(fd, True)
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi",
                "-c",
                "config/gunicorn.py",
                "--bind",
                f"fd://{fd}",
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            pass_fds=(fd,),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                get(self.url("/healthz"), timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 30 s")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.sock.close()


def app_env(multiproc_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a cluster or web process on the test database (tests/cluster.py)."""
    env = ClusterProcess().env
    env.update({"PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir), "LOG_LEVEL": "WARNING", **extra})
    return env


def free_port() -> int:
    """Prometheus cannot report the port it bound to 0, so take one the kernel just gave."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prometheus:
    """The real Prometheus server, loopback only, temp config and storage."""

    def __init__(self, workdir: Path, target: str, *, token: str, interval: str = "1s"):
        if not os.path.exists(PROMETHEUS):
            raise FileNotFoundError(PROMETHEUS)
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            f"""
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: integrations
    metrics_path: /metrics
    authorization:
      credentials: {token}
    static_configs:
      - targets: ["{target}"]
"""
        )
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus did not become ready within 30 s")

    def query(self, expression: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        status, body = get(url)
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", body
        return answer["data"]["result"]

    def targets(self) -> list[dict]:
        return json.loads(get(f"http://127.0.0.1:{self.port}/api/v1/targets")[1])["data"]["activeTargets"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
