"""Multiprocess mode: two gunicorn workers and a django-q2 cluster's workers write into one
PROMETHEUS_MULTIPROC_DIR; one scrape of any worker sums them all. And a real Prometheus
server scraping the running service while events are delivered."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.db import close_old_connections

from tests.cluster import ClusterProcess, wait_until
from tests.webhooks.receiver import Reply
from webhooks.models import WebhookLog
from webhooks.services import trigger_event, webhook_create

from .helpers import parse
from .processes import PROMETHEUS, Gunicorn, Prometheus, app_env, get

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]

TOKEN = "scrape-token-for-tests"
EVENTS, FAILING = 24, 6  # every 4th event is answered 500 (then retried only after an hour)


@pytest.fixture
def service(tmp_path):
    """gunicorn (2 workers) and a cluster sharing one multiprocess directory; gunicorn first,
    as in production: its config clears the directory at start."""
    directory = tmp_path / "multiproc"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"")  # a previous run's file: cleared
    env = app_env(directory, METRICS_TOKEN=TOKEN, WEBHOOKS_RETRY_DELAYS="3600")
    web = Gunicorn(env, workers=2)
    cluster = ClusterProcess(**{k: env[k] for k in ("PROMETHEUS_MULTIPROC_DIR", "WEBHOOKS_RETRY_DELAYS")}).start()
    yield web, cluster, directory
    cluster.stop()
    web.stop()
    close_old_connections()


def scrape(web: Gunicorn):
    status, body = get(web.url("/metrics"), {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    return parse(body.decode())


def deliver(organization, receiver) -> None:
    receiver.responder = lambda request: Reply(status=500 if request.json()["data"]["seq"] % 4 == 0 else 200)
    webhook_create(organization=organization, name="r", url=receiver.url, events=["application.created"])
    for seq in range(EVENTS):
        trigger_event(organization=organization, event="application.created", payload={"seq": seq})
    receiver.wait_for(EVENTS, timeout=60)
    wait_until(lambda: WebhookLog.objects.count() == EVENTS, timeout=30)


def worker_pids(directory: Path, prefix: str) -> set[str]:
    return {path.stem.split("_")[-1] for path in directory.glob(f"{prefix}_*.db")}


def test_one_scrape_sums_both_gunicorn_workers_and_the_cluster(organization, receiver, service):
    web, _cluster, directory = service
    assert not (directory / "counter_999999.db").exists()
    assert get(web.url("/metrics"))[0] == 401  # the token reached the workers

    # Requests on new connections until both workers have served some.
    sent = 0
    while len(worker_pids(directory, "counter")) < 2 or sent < 20:
        assert get(web.url("/api/no-such-route/"))[0] == 404
        sent += 1
        assert sent < 500, "one gunicorn worker served everything"
    web_pids = worker_pids(directory, "counter")

    deliver(organization, receiver)
    cluster_pids = worker_pids(directory, "counter") - web_pids
    assert cluster_pids, "no cluster process wrote metrics"

    samples = scrape(web)
    assert samples.value("http_requests_total", route="api/{path}", method="GET", status="404") == sent
    assert samples.value("webhook_deliveries_total", outcome="succeeded", status_class="2xx") == EVENTS - FAILING
    assert samples.value("webhook_deliveries_total", outcome="retrying", status_class="5xx") == FAILING
    assert samples.value("webhook_end_to_end_latency_seconds_count") == EVENTS - FAILING
    # the DB gauges, from whichever worker answered: the 6 retries wait an hour
    assert samples.value("webhook_due_backlog") == 0
    # another scrape, likely by the other worker, says the same
    again = scrape(web)
    assert again.value("webhook_deliveries_total", outcome="succeeded", status_class="2xx") == EVENTS - FAILING


def test_a_real_prometheus_scrapes_the_running_service_and_counts_every_delivery(
    organization, receiver, service, tmp_path
):
    if not Path(PROMETHEUS).exists():
        pytest.fail(
            f"The Prometheus server ({PROMETHEUS}) is not installed: this test needs the real one "
            "(Debian package `prometheus`; CI installs it in .ci/run)."
        )
    web, _cluster, _directory = service
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    prometheus = Prometheus(workdir, f"127.0.0.1:{web.port}", token=TOKEN)
    try:
        wait_until(lambda: any(t["health"] == "up" for t in prometheus.targets()), timeout=30, interval=0.5)
        deliver(organization, receiver)  # while Prometheus scrapes every second

        def delivered() -> float:
            result = prometheus.query("sum(webhook_deliveries_total)")
            return float(result[0]["value"][1]) if result else -1

        wait_until(lambda: delivered() == EVENTS, timeout=30, interval=0.5)
        assert delivered() == EVENTS
        succeeded = prometheus.query('sum(webhook_deliveries_total{outcome="succeeded",status_class="2xx"})')
        assert float(succeeded[0]["value"][1]) == EVENTS - FAILING
        retrying = prometheus.query('webhook_deliveries_total{outcome="retrying"}')
        assert [(r["metric"]["status_class"], float(r["value"][1])) for r in retrying] == [("5xx", FAILING)]
        latency = prometheus.query("webhook_end_to_end_latency_seconds_count")
        assert float(latency[0]["value"][1]) == EVENTS - FAILING
        time.sleep(1.5)  # a later scrape still agrees
        assert delivered() == EVENTS
    finally:
        prometheus.stop()
