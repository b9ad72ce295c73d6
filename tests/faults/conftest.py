"""Fault injection: real PostgreSQL, real clusters (subprocesses), a real receiver.

Run with `make test-faults` (both brokers). Each test appends a line to the report that
is printed at the end of the run: events sent, received, lost, duplicated, recovery time.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.db import close_old_connections, connection

from tests.cluster import ClusterProcess
from tests.webhooks.receiver import Received, Receiver
from webhooks import tasks

REPORT: list[str] = []
BROKER = "redis" if settings.Q_CLUSTER.get("redis") else "orm"
# Fast retries and short leases so that the scenarios finish in seconds.
CLUSTER_ENV = {"WEBHOOKS_LEASE_SECONDS": "4", "WEBHOOKS_RETRY_DELAYS": "1,2,3,5,8", "WEBHOOKS_WAKEUPS": "true"}


def pytest_collection_modifyitems(items):
    if connection.vendor != "postgresql":
        raise pytest.UsageError("The fault-injection suite runs on PostgreSQL: set DATABASE_URL (make test-faults).")


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section(f"fault injection report ({BROKER} broker)")
        for line in REPORT:
            terminalreporter.write_line(line)


class FaultReceiver:
    """A receiver that can go down and come back on the same port, keeping its records."""

    def __init__(self):
        self.requests: list[Received] = []
        self.server = Receiver(requests=self.requests).start()
        self.port = self.server.server.server_address[1]
        self.url = self.server.url

    def down(self) -> None:
        self.server.stop()

    def up(self) -> None:
        self.server = Receiver(port=self.port, requests=self.requests).start()

    def ids(self) -> Counter:
        return Counter(r.headers["webhook-id"] for r in list(self.requests))


@dataclass
class Outcome:
    sent: int
    received: int
    lost: int
    duplicated: int
    seconds: float


def wait_for_all(receiver: FaultReceiver, expected: set[str], *, timeout: float = 90, sweep: bool = True) -> Outcome:
    """Wait until every expected message arrived, running the sweeper every second (the
    schedule runs it every minute; the scenarios should not wait that long)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if expected <= set(receiver.ids()):
            break
        if sweep:
            try:
                tasks.sweep()
            except Exception:  # the database may be down in some scenarios
                close_old_connections()
                connection.close()
        time.sleep(1)
    time.sleep(1.5)  # let any late duplicate arrive
    ids = receiver.ids()
    received = len(expected & set(ids))
    duplicated = sum(count - 1 for msg_id, count in ids.items() if msg_id in expected)
    return Outcome(len(expected), received, len(expected) - received, duplicated, time.monotonic() - started)


def report(name: str, outcome: Outcome, extra: str = "") -> None:
    REPORT.append(
        f"{name:<36} sent {outcome.sent:>4}  received {outcome.received:>4}  lost {outcome.lost:>3}  "
        f"duplicated {outcome.duplicated:>3}  done in {outcome.seconds:5.1f} s{('  ' + extra) if extra else ''}"
    )


@pytest.fixture
def fault_receiver():
    receiver = FaultReceiver()
    yield receiver
    receiver.server.stop()


@pytest.fixture
def clusters():
    started: list[ClusterProcess] = []

    def start(**env):
        cluster = ClusterProcess(**{**CLUSTER_ENV, **env}).start()
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.kill()
    close_old_connections()


@pytest.fixture(autouse=True)
def _fault_settings():
    os.environ.setdefault("RUN_FAULT_TESTS", "1")
