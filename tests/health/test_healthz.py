"""GET /healthz: database, broker and cluster heartbeat; 200 or 503 naming the failing part."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import OperationalError
from django.utils import timezone

from health import service_status
from health.models import ClusterHeartbeat
from health.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_up_when_everything_answers_and_needs_no_auth(anon_client, settings):
    heartbeat()
    response = anon_client.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["status"] == "ok"
    assert {name: part["ok"] for name, part in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "cluster": True,
    }
    assert body["checks"]["broker"]["broker"] == ("redis" if settings.Q_CLUSTER.get("redis") else "orm")
    assert anon_client.get("/healthz/").status_code == HTTPStatus.OK
    assert response["Cache-Control"].startswith("max-age=0")


def test_no_heartbeat_is_503(anon_client):
    response = anon_client.get("/healthz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["cluster"]["ok"] is False
    assert "no heartbeat" in body["checks"]["cluster"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_a_stale_heartbeat_is_503(anon_client, settings):
    settings.HEALTHZ_HEARTBEAT_MAX_AGE_SECONDS = 120
    ClusterHeartbeat.objects.create(name="old", beat_at=timezone.now() - timedelta(minutes=5))
    cluster = anon_client.get("/healthz").json()["checks"]["cluster"]
    assert cluster["ok"] is False
    assert cluster["age_seconds"] >= 300
    ClusterHeartbeat.objects.create(name="fresh", beat_at=timezone.now())  # another cluster is alive
    assert anon_client.get("/healthz").status_code == HTTPStatus.OK


def test_an_unreachable_redis_broker_is_503(anon_client, settings):
    heartbeat()
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    response = anon_client.get("/healthz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    broker = response.json()["checks"]["broker"]
    assert broker == {"ok": False, "broker": "redis", "error": "unreachable (ConnectionError)"}


def test_an_unreachable_database_is_503(anon_client, monkeypatch):
    class DownConnection:
        vendor = "down"

        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(service_status, "connection", DownConnection())
    response = anon_client.get("/healthz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": False, "error": "unreachable (OperationalError)"}
    assert checks["cluster"]["ok"] is False


def test_only_get_and_head(anon_client):
    assert anon_client.post("/healthz").status_code == HTTPStatus.METHOD_NOT_ALLOWED
