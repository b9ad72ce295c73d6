"""docs/API.md §5 under injected faults. Each scenario reports sent / received / lost / duplicated."""

from __future__ import annotations

import os
import subprocess
import time

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from tests.faults.conftest import BROKER, report, wait_for_all
from tests.webhooks.receiver import ConcurrencyTracker, Reply
from webhooks.models import Delivery, WebhookLog
from webhooks.scheduling import broker
from webhooks.services import trigger_event, webhook_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]


def trigger(organization, count: int, *, start: int = 0, pace: float = 0.0) -> int:
    """Trigger `count` events; an event counts as sent once its trigger committed."""
    sent = 0
    for n in range(start, start + count):
        for _ in range(50):
            try:
                trigger_event(organization=organization, event="application.created", payload={"n": n})
                sent += 1
                break
            except (OperationalError, InterfaceError):  # the database is down: the platform retries
                connection.close()
                time.sleep(0.2)
        if pace:
            time.sleep(pace)
    return sent


def expected_ids() -> set[str]:
    for _ in range(50):
        try:
            return {d.message_id for d in Delivery.objects.only("id")}
        except (OperationalError, InterfaceError):
            connection.close()
            time.sleep(0.2)
    raise AssertionError("database unavailable")


def subscribe(organization, url: str, count: int = 1) -> None:
    for index in range(count):
        webhook_create(organization=organization, name=f"hook-{index}", url=url, events=["*"], retry_attempts=8)


def test_cluster_killed_mid_stream_then_restarted(organization, fault_receiver, clusters):
    fault_receiver.server.default = Reply(delay=0.05)
    subscribe(organization, fault_receiver.url)
    first = clusters()
    trigger(organization, 100, pace=0.01)
    first.kill()  # SIGKILL to every process of the cluster, sends in flight
    in_flight = Delivery.objects.filter(state="pending", lease_token__isnull=False).count()
    trigger(organization, 100, start=100)
    clusters()
    outcome = wait_for_all(fault_receiver, expected_ids())
    report(f"cluster SIGKILL + restart [{BROKER}]", outcome, f"{in_flight} leased at the kill")
    assert outcome.lost == 0


def test_receiver_down_then_back(organization, fault_receiver, clusters):
    subscribe(organization, fault_receiver.url)
    clusters()
    trigger(organization, 30, pace=0.01)
    fault_receiver.down()
    trigger(organization, 60, start=30, pace=0.02)
    time.sleep(4)
    fault_receiver.up()
    outcome = wait_for_all(fault_receiver, expected_ids())
    failed_attempts = WebhookLog.objects.filter(success=False).count()
    report(f"receiver down ~6 s then back [{BROKER}]", outcome, f"{failed_attempts} failed attempts retried")
    assert outcome.lost == 0
    assert failed_attempts > 0


def test_broker_loses_its_queue(organization, fault_receiver, clusters):
    """Redis flushed (or the ORM queue emptied) while tasks wait: the sweeper re-sends."""
    subscribe(organization, fault_receiver.url)
    cluster = clusters()
    trigger(organization, 30)
    wait_for_all(fault_receiver, expected_ids(), sweep=False, timeout=30)
    cluster.stop()
    trigger(organization, 60, start=30)
    queued = broker().queue_size()
    broker().delete_queue()
    clusters()
    time.sleep(3)
    before_sweep = len(fault_receiver.requests)
    outcome = wait_for_all(fault_receiver, expected_ids())
    report(
        f"broker queue lost [{BROKER}]",
        outcome,
        f"{queued} queued tasks dropped; {before_sweep - 30} delivered before the sweep",
    )
    assert before_sweep == 30  # nothing arrives until the sweeper runs...
    assert outcome.lost == 0  # ...then everything does


def _restart_database() -> str:
    """A real PostgreSQL restart when FAULTS_REAL_PG_RESTART=1 (CI, where nothing else uses
    the server); otherwise the same from the clients' view, scoped to the test database:
    every connection is killed and new ones are refused for 3 s."""
    params = connection.settings_dict
    if os.environ.get("FAULTS_REAL_PG_RESTART") == "1":
        version = sorted(os.listdir("/etc/postgresql"))[0]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, timeout=60
        )
        return "server restarted"
    admin = psycopg.connect(
        host=params.get("HOST") or "127.0.0.1",
        port=params.get("PORT") or 5432,
        user=params.get("USER") or None,
        dbname="postgres",
        autocommit=True,
    )
    name = params["NAME"]
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        time.sleep(3)
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    return "connections killed, refused for 3 s"


def test_database_restarted_mid_stream(organization, fault_receiver, clusters):
    subscribe(organization, fault_receiver.url)
    clusters()
    trigger(organization, 40, pace=0.01)
    # Mid-stream: the cluster is up and delivering when the database goes away (a cluster
    # whose processes are still starting fails to start at all, which is another scenario).
    deadline = time.monotonic() + 30
    while not fault_receiver.ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fault_receiver.ids(), "the cluster delivered nothing before the fault"
    how = _restart_database()
    connection.close()
    close_old_connections()
    trigger(organization, 60, start=40, pace=0.01)
    outcome = wait_for_all(fault_receiver, expected_ids())
    report(f"database restarted [{BROKER}]", outcome, f"{how}; cluster not restarted")
    assert outcome.lost == 0


def test_two_clusters_never_send_one_delivery_concurrently(organization, fault_receiver, clusters):
    tracker = ConcurrencyTracker(hold=0.01)
    fault_receiver.server.responder = tracker
    subscribe(organization, fault_receiver.url, count=2)
    clusters()
    clusters()
    trigger(organization, 200)
    outcome = wait_for_all(fault_receiver, expected_ids())
    report(f"two clusters at once [{BROKER}]", outcome, f"{len(tracker.overlaps)} concurrent duplicate sends")
    assert outcome.lost == 0
    assert outcome.duplicated == 0
    assert tracker.overlaps == []
