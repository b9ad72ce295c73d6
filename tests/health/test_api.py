from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone

from health.models import HealthCheck, HealthState
from integrations.models import Integration
from tests.api_errors import error_fields
from tests.integrations.factories import OAuthIntegrationFactory

from .conftest import CUSTOM_URL, SECRET, custom

pytestmark = pytest.mark.django_db


def url(integration, suffix="health/"):
    return f"/api/integrations/{integration.pk}/{suffix}"


def history(integration, *statuses, hours_ago=1):
    now = timezone.now()
    for n, status in enumerate(statuses):
        HealthCheck.objects.create(
            integration=integration,
            status=status,
            response_time_ms=100 + n,
            checked_at=now - timedelta(hours=hours_ago, minutes=n),
        )


def test_get_health_with_latest_status_history_and_uptime(api_client, organization):
    integration = custom(organization, health_status="degraded")
    history(integration, "degraded", "healthy", "unhealthy", "healthy")
    history(integration, "unhealthy", "unhealthy", hours_ago=30)  # outside the 24 h window
    HealthState.objects.create(integration=integration, consecutive_unhealthy=0)
    response = api_client.get(url(integration))
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["integration"] == str(integration.pk)
    assert body["health_status"] == "degraded"
    assert body["status"] == "active"
    assert body["uptime_24h"] == 75.0
    assert body["checks_24h"] == 4
    assert body["average_response_time_ms_24h"] == 101.5
    assert body["latest"]["status"] == "degraded"
    assert [c["status"] for c in body["history"]] == [
        "degraded",
        "healthy",
        "unhealthy",
        "healthy",
        "unhealthy",
        "unhealthy",
    ]
    assert SECRET not in response.content.decode()


def test_get_health_without_checks(api_client, organization):
    body = api_client.get(url(custom(organization)).rstrip("/")).json()  # trailing slash optional
    assert body["latest"] is None and body["uptime_24h"] is None and body["history"] == []


def test_history_limit_and_bad_limits(api_client, organization):
    integration = custom(organization)
    history(integration, *["healthy"] * 5)
    assert len(api_client.get(url(integration) + "?limit=2").json()["history"]) == 2
    for bad in ("0", "101", "x"):
        response = api_client.get(url(integration) + f"?limit={bad}")
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert "limit" in error_fields(response)


def test_get_health_uses_a_constant_number_of_queries(api_client, organization, django_assert_max_num_queries):
    integration = custom(organization)
    history(integration, *["healthy"] * 50)
    with django_assert_max_num_queries(8):
        assert len(api_client.get(url(integration) + "?limit=100").json()["history"]) == 50


def test_other_organizations_integration_is_404(other_client, organization):
    integration = custom(organization)
    assert other_client.get(url(integration)).status_code == HTTPStatus.NOT_FOUND
    assert other_client.post(url(integration, "health/check/")).status_code == HTTPStatus.NOT_FOUND
    assert not HealthCheck.objects.exists()


def test_unknown_and_malformed_ids_are_404(api_client):
    assert api_client.get("/api/integrations/00000000-0000-0000-0000-000000000000/health/").status_code == 404
    assert api_client.get("/api/integrations/not-a-uuid/health/").status_code == 404


def test_post_check_runs_a_check_and_returns_it(api_client, organization):
    integration = custom(organization)
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=503)
        response = api_client.post(url(integration, "health/check"))  # no trailing slash
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["health_status"] == "unhealthy"
    assert body["status"] == "active"
    assert body["check"]["status"] == "unhealthy"
    assert body["check"]["http_status"] == 503
    assert body["check"]["id"] == HealthCheck.objects.get().pk
    integration.refresh_from_db()
    assert integration.health_status == Integration.HealthStatus.UNHEALTHY


def test_read_only_keys_may_get_but_not_check(read_only_client, organization):
    integration = custom(organization)
    assert read_only_client.get(url(integration)).status_code == HTTPStatus.OK
    with responses.RequestsMock():
        response = read_only_client.post(url(integration, "health/check/"))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not HealthCheck.objects.exists()


def test_check_while_a_run_holds_the_integration_is_409(api_client, organization):
    integration = custom(organization)
    HealthState.objects.create(integration=integration, leased_until=timezone.now() + timedelta(minutes=1))
    with responses.RequestsMock():
        response = api_client.post(url(integration, "health/check/"))
    assert response.status_code == HTTPStatus.CONFLICT
    assert not HealthCheck.objects.exists()


def test_unauthenticated_requests_are_401(anon_client, organization):
    assert anon_client.get(url(custom(organization))).status_code == HTTPStatus.UNAUTHORIZED


def test_options_on_health_routes_is_not_a_server_error(api_client, organization):
    integration = custom(organization)
    for path in (url(integration), url(integration, "health/check/")):
        response = api_client.options(path)
        assert response.status_code == HTTPStatus.OK, path


def test_check_of_an_integration_never_connected_is_409_and_leaves_it_unknown(api_client, organization):
    integration = OAuthIntegrationFactory(organization=organization, health_status="unhealthy")  # stale red mark
    with responses.RequestsMock():  # nothing is sent
        response = api_client.post(url(integration, "health/check/"))
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json()["detail"].startswith("Not connected yet: never authorized")
    assert not HealthCheck.objects.exists()
    integration.refresh_from_db()
    assert integration.health_status == Integration.HealthStatus.UNKNOWN
    assert api_client.get(url(integration)).json()["health_status"] == "unknown"
