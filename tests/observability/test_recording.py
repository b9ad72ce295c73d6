"""The counters and histograms after known traffic: deliveries, health checks, token
refreshes, provider calls and API requests, read back through `/metrics`."""

from __future__ import annotations

import json
from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone

from health.services import health_run
from integrations.client import RateLimited, integration_client
from integrations.models import Integration
from integrations.oauth.tokens import ReauthorizationRequired, oauth_refresh_token
from tests.health.conftest import custom
from tests.integrations.factories import OAuthIntegrationFactory
from tests.integrations.grants.authorization_server import LocalAuthorizationServer
from tests.integrations.grants.conftest import custom_jwt
from tests.integrations.grants.keys import public_pem, rsa_pem
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, token_body
from tests.webhooks.receiver import Received, Reply
from webhooks import tasks
from webhooks.models import Delivery, Event
from webhooks.services import trigger_event, webhook_create

from .helpers import Delta

pytestmark = pytest.mark.django_db


@pytest.fixture
def delta(client):
    return lambda: Delta(client)


def by_seq(statuses: dict[int, int]):
    def answer(request: Received) -> Reply:
        return Reply(status=statuses.get(request.json()["data"]["seq"], 200))

    return answer


def test_deliveries_count_by_outcome_and_status_class_exactly(organization, receiver, delta):
    """7 events: 4 answered 2xx, 2 answered 500 (retried later), 1 answered 410 (failed);
    then a webhook that refuses connections (failed, no status) and a disabled webhook's
    delivery (not sent: failed, no status, no attempt duration)."""
    receiver.responder = by_seq({1: 500, 2: 500, 3: 410})
    webhook_create(organization=organization, name="r", url=receiver.url, events=["application.created"])
    measured = delta()
    for seq in range(7):
        trigger_event(organization=organization, event="application.created", payload={"seq": seq})
    assert tasks.deliver_due() == 7
    changes = measured()
    assert changes.value("webhook_deliveries_total", outcome="succeeded", status_class="2xx") == 4
    assert changes.value("webhook_deliveries_total", outcome="retrying", status_class="5xx") == 2
    assert changes.value("webhook_deliveries_total", outcome="failed", status_class="4xx") == 1
    assert changes.total("webhook_deliveries_total") == 7
    assert changes.value("webhook_attempt_duration_seconds_count", status_class="2xx") == 4
    assert changes.value("webhook_attempt_duration_seconds_count", status_class="5xx") == 2
    assert changes.value("webhook_end_to_end_latency_seconds_count") == 4
    # each latency is at least the time from the event's commit to the 2xx
    assert changes.value("webhook_end_to_end_latency_seconds_sum") > 0

    refusing = webhook_create(
        organization=organization, name="down", url="http://127.0.0.1:9/hook", events=["job.created"], retry_attempts=0
    )
    disabled = webhook_create(organization=organization, name="off", url=receiver.url, events=["job.created"])
    trigger_event(organization=organization, event="job.created", payload={"seq": 100})
    disabled.is_active = False
    disabled.save(update_fields=["is_active"])
    measured = delta()
    assert tasks.deliver_due() == 2
    changes = measured()
    assert changes.value("webhook_deliveries_total", outcome="failed", status_class="none") == 2
    assert changes.value("webhook_attempt_duration_seconds_count", status_class="none") == 1  # the refused one
    assert changes.value("webhook_end_to_end_latency_seconds_count") == 0
    assert Delivery.objects.filter(webhook=refusing, state=Delivery.State.FAILED).count() == 1


def test_end_to_end_latency_runs_from_the_events_commit_to_its_2xx(organization, receiver, delta):
    webhook_create(organization=organization, name="r", url=receiver.url, events=["application.created"])
    trigger_event(organization=organization, event="application.created", payload={"seq": 0})
    # the event was committed 30 s ago: its delivery's latency is at least that
    Event.objects.update(created_at=timezone.now() - timedelta(seconds=30))
    measured = delta()
    tasks.deliver_due()
    changes = measured()
    assert changes.value("webhook_end_to_end_latency_seconds_count") == 1
    assert 30 <= changes.value("webhook_end_to_end_latency_seconds_sum") < 40
    assert changes.value("webhook_end_to_end_latency_seconds_bucket", le="10.0") == 0
    assert changes.value("webhook_end_to_end_latency_seconds_bucket", le="60.0") == 1


def test_metrics_disabled_records_nothing(organization, receiver, delta, settings):
    settings.METRICS_ENABLED = False
    webhook_create(organization=organization, name="r", url=receiver.url, events=["application.created"])
    measured = delta()
    trigger_event(organization=organization, event="application.created", payload={"seq": 0})
    tasks.deliver_due()
    changes = measured()
    assert len(receiver.requests) == 1
    assert changes.total("webhook_deliveries_total") == 0
    assert changes.total("http_requests_total") == 0


def test_health_checks_count_by_provider_and_result_with_status_changes(
    organization, receiver, delta, django_capture_on_commit_callbacks
):
    receiver.responder = lambda request: Reply(status=500 if request.path.endswith("/down") else 200)
    for n in range(3):
        custom(organization, receiver.url + "/up", name=f"up{n}")
    custom(organization, receiver.url + "/down", name="down", health_status=Integration.HealthStatus.HEALTHY)
    measured = delta()
    with django_capture_on_commit_callbacks(execute=True):
        summary = health_run(force=True)
    assert summary.counts == {"healthy": 3, "unhealthy": 1}
    changes = measured()
    assert changes.value("health_checks_total", provider="custom", result="healthy") == 3
    assert changes.value("health_checks_total", provider="custom", result="unhealthy") == 1
    assert changes.value("health_check_duration_seconds_count", provider="custom") == 4
    # unknown -> healthy three times, healthy -> unhealthy once
    assert changes.value("health_status_changes_total", provider="custom") == 4

    measured = delta()
    with django_capture_on_commit_callbacks(execute=True):
        health_run(force=True)
    changes = measured()
    assert changes.total("health_checks_total", provider="custom") == 4
    assert changes.value("health_status_changes_total", provider="custom") == 0  # nothing changed


def test_token_refreshes_count_by_grant_and_outcome(organization, delta, settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"
    credentials = {"access_token": "old", "refresh_token": "r", "token_type": "Bearer"}
    ok = OAuthIntegrationFactory(organization=organization, status="active", credentials=credentials)
    failing = OAuthIntegrationFactory(organization=organization, status="active", credentials=credentials)
    measured = delta()
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("new", "r2"), content_type="application/json")
        oauth_refresh_token(integration=ok, force=True)
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=503, body="down")
        with pytest.raises(Exception):
            oauth_refresh_token(integration=failing, force=True)
    changes = measured()
    assert changes.value("integration_token_refreshes_total", grant="refresh", outcome="success") == 1
    assert changes.value("integration_token_refreshes_total", grant="refresh", outcome="failure") == 1


def test_provider_calls_count_by_provider_and_status_class_and_429_is_rate_limited(organization, delta, settings):
    settings.MICROSOFT_CLIENT_ID = "ms-client"
    settings.MICROSOFT_CLIENT_SECRET = "ms-secret"
    settings.INTEGRATIONS_CLIENT_RETRIES = 0
    integration = OAuthIntegrationFactory(
        organization=organization,
        provider="microsoft_outlook",
        status="active",
        credentials={"access_token": "t", "refresh_token": "r", "token_type": "Bearer"},
        token_expires_at=timezone.now() + timedelta(hours=1),
    )
    url = "https://graph.microsoft.com/v1.0/me/events"
    measured = delta()
    with responses.RequestsMock() as mock:
        mock.get(url, json={"value": []})
        mock.get(url + "/x", status=429, json={"error": {"code": "TooMany"}})
        client = integration_client(integration)
        client.get("me/events")
        client.get("me/events")
        with pytest.raises(RateLimited):
            client.get("me/events/x")
    changes = measured()
    assert changes.value("integration_provider_calls_total", provider="microsoft_outlook", status_class="2xx") == 2
    assert changes.value("integration_provider_calls_total", provider="microsoft_outlook", status_class="4xx") == 1
    assert changes.value("integration_rate_limited_total", provider="microsoft_outlook") == 1
    assert changes.value("integration_rate_limit_wait_seconds_count", provider="microsoft_outlook") == 0


def test_api_requests_count_by_url_pattern_method_and_status(organization, api_client, receiver, delta):
    webhook = webhook_create(organization=organization, name="r", url=receiver.url, events=["application.created"])
    measured = delta()
    for _ in range(3):
        assert api_client.get(f"/api/integrations/webhooks/{webhook.pk}/logs/").status_code == HTTPStatus.OK
    other = "00000000-0000-0000-0000-000000000000"
    assert api_client.get(f"/api/integrations/webhooks/{other}/logs/").status_code == HTTPStatus.NOT_FOUND
    body = json.dumps({"event": "application.created", "payload": {"x": 1}})
    assert api_client.post("/api/events/", body, content_type="application/json").status_code == HTTPStatus.ACCEPTED
    assert api_client.get("/api/no/such/thing/").status_code == HTTPStatus.NOT_FOUND
    changes = measured()
    logs = "api/integrations/webhooks/{pk}/logs/"
    assert changes.value("http_requests_total", route=logs, method="GET", status="200") == 3
    assert changes.value("http_requests_total", route=logs, method="GET", status="404") == 1
    assert changes.value("http_request_duration_seconds_count", route=logs, method="GET") == 4
    assert changes.value("http_requests_total", route="api/events/", method="POST", status="202") == 1
    assert changes.value("http_requests_total", route="api/{path}", method="GET", status="404") == 1
    # the raw paths (ids) never become labels
    assert not [key for key in changes if any(str(webhook.pk) in v for _, v in key[1])]


def test_jwt_mints_count_as_the_jwt_grant(organization, client):
    server = LocalAuthorizationServer().start()
    try:
        server.register("acme-hiring", public_pem(rsa_pem()))
        minting = custom_jwt(organization, server, name="mints")
        refused = custom_jwt(organization, server, name="refused", credentials={"private_key": rsa_pem("another")})
        measured = Delta(client)
        oauth_refresh_token(integration=minting, force=True)
        with pytest.raises(ReauthorizationRequired):
            oauth_refresh_token(integration=refused, force=True)
        changes = measured()
    finally:
        server.stop()
    assert changes.value("integration_token_refreshes_total", grant="jwt", outcome="success") == 1
    assert changes.value("integration_token_refreshes_total", grant="jwt", outcome="failure") == 1
    assert changes.total("integration_token_refreshes_total", grant="refresh") == 0
