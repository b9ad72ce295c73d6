"""One check per provider: the rules of health/checks.py, against mocked providers."""

import base64
from datetime import timedelta
from http import HTTPStatus

import pytest
import requests
import responses
from responses import matchers

from health.checks import DEGRADED, HEALTHY, UNHEALTHY, check_integration, not_connected_reason
from integrations.models import Integration
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, token_body
from tests.webhooks.receiver import Reply

from .conftest import CUSTOM_URL, GOOGLE_URL, GRAPH_URL, SECRET, SLACK_URL, api_key, custom, oauth

pytestmark = pytest.mark.django_db


def bearer(token=SECRET):
    return [matchers.header_matcher({"Authorization": f"Bearer {token}"})]


def test_google_2xx_is_healthy_with_response_time(organization):
    with responses.RequestsMock() as mock:
        mock.get(GOOGLE_URL, json={"id": "primary"}, match=bearer())
        result = check_integration(oauth(organization))
    assert result.status == HEALTHY
    assert result.http_status == HTTPStatus.OK
    assert result.response_time_ms is not None and result.response_time_ms >= 0
    assert result.error == ""


@pytest.mark.parametrize("code", [HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN])
def test_microsoft_graph_401_403_are_unhealthy(organization, code):
    with responses.RequestsMock() as mock:
        mock.get(GRAPH_URL, status=code, json={"error": {"code": "InvalidAuthenticationToken"}}, match=bearer())
        result = check_integration(oauth(organization, "microsoft_outlook", config={"tenant": "common"}))
    assert result.status == UNHEALTHY
    assert result.http_status == code
    assert f"HTTP {int(code)}" in result.error and "graph.microsoft.com" in result.error


def test_slack_ok_false_is_unhealthy_with_the_provider_error(organization):
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, json={"ok": False, "error": "invalid_auth"}, match=bearer())
        result = check_integration(oauth(organization, "slack"))
    assert result.status == UNHEALTHY
    assert result.http_status == HTTPStatus.OK
    assert "invalid_auth" in result.error


def test_slack_ok_true_is_healthy(organization):
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, json={"ok": True, "team": "acme"}, match=bearer())
        assert check_integration(oauth(organization, "slack")).status == HEALTHY


def test_slack_non_json_answer_is_unhealthy(organization):
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, body="<html>oops</html>")
        result = check_integration(oauth(organization, "slack"))
    assert result.status == UNHEALTHY
    assert "ok: true" in result.error


def test_bamboohr_sends_the_api_key_as_basic_username(organization):
    url = "https://api.bamboohr.com/api/gateway.php/acmeco/v1/meta/fields"
    expected = "Basic " + base64.b64encode(f"{SECRET}:x".encode()).decode()
    integration = api_key(organization, "bamboohr", config={"company_domain": "acmeco"})
    with responses.RequestsMock() as mock:
        mock.get(url, json=[], match=[matchers.header_matcher({"Authorization": expected})])
        assert check_integration(integration).status == HEALTHY


def test_workday_basic_credentials_and_configured_url(organization):
    url = "https://wd2-impl-services1.workday.com/ccx/api/v1/acme/workers?limit=1"
    integration = IntegrationFactory(
        organization=organization,
        provider="workday",
        config={"tenant": "acme", "health_check_url": url},
        credentials={"username": "isu", "password": SECRET},
    )
    expected = "Basic " + base64.b64encode(f"isu:{SECRET}".encode()).decode()
    with responses.RequestsMock() as mock:
        mock.get(url, json={}, match=[matchers.header_matcher({"Authorization": expected})])
        assert check_integration(integration).status == HEALTHY


def test_custom_uses_config_health_check_url_with_bearer(organization):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, body="ok", match=bearer())
        assert check_integration(custom(organization)).status == HEALTHY


def test_custom_without_a_health_check_url_is_degraded(organization):
    integration = api_key(organization, "custom", config={"category": "communication"})
    with responses.RequestsMock():
        result = check_integration(integration)
    assert result.status == DEGRADED
    assert "health_check_url" in result.error


def test_glassdoor_has_no_check_and_is_degraded(organization):
    integration = api_key(organization, "glassdoor", config={"partner_id": "p1"})
    with responses.RequestsMock():
        result = check_integration(integration)
    assert result.status == DEGRADED
    assert "No health check available" in result.error


def test_429_is_degraded(organization):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=HTTPStatus.TOO_MANY_REQUESTS)
        result = check_integration(custom(organization))
    assert (result.status, result.http_status) == (DEGRADED, 429)


@pytest.mark.parametrize("code", [500, 502, 503])
def test_5xx_is_unhealthy(organization, code):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=code)
        result = check_integration(custom(organization))
    assert result.status == UNHEALTHY
    assert f"HTTP {code}" in result.error


def test_404_and_redirects_are_unhealthy(organization):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=302, headers={"Location": "https://elsewhere.example.com/"})
        result = check_integration(custom(organization))
    assert result.status == UNHEALTHY
    assert "HTTP 302" in result.error


@pytest.mark.parametrize(
    ("error", "text"),
    [(requests.ConnectTimeout(), "Timed out"), (requests.ConnectionError("boom"), "Connection failed")],
)
def test_timeouts_and_connection_errors_are_unhealthy(organization, error, text):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, body=error)
        result = check_integration(custom(organization))
    assert result.status == UNHEALTHY
    assert text in result.error
    assert result.response_time_ms is None


def test_missing_credentials_are_unhealthy(organization):
    never_authorized = OAuthIntegrationFactory(organization=organization)
    no_key = IntegrationFactory(organization=organization, credentials={})
    with responses.RequestsMock():
        first, second = check_integration(never_authorized), check_integration(no_key)
    assert first.status == UNHEALTHY and "Missing credentials" in first.error
    assert second.status == UNHEALTHY and "Missing credentials" in second.error


def test_a_token_about_to_expire_is_refreshed_before_the_check(organization):
    integration = oauth(organization, token="old-access", token_expires_at=None)
    Integration.objects.filter(pk=integration.pk).update(
        token_expires_at=integration.created_at + timedelta(seconds=30)
    )
    integration.refresh_from_db()
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("new-access", "new-refresh"), content_type="application/json")
        mock.get(GOOGLE_URL, json={}, match=bearer("new-access"))
        result = check_integration(integration)
        assert [call.request.url for call in mock.calls] == [GOOGLE_TOKEN_URL, GOOGLE_URL]
    assert result.status == HEALTHY
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "new-access"


def test_a_dead_grant_is_unhealthy_without_leaking_tokens(organization):
    integration = oauth(organization)
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=integration.created_at)
    integration.refresh_from_db()
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "revoked"})
        result = check_integration(integration)
    assert result.status == UNHEALTHY
    assert "Re-authorization required" in result.error
    assert SECRET not in result.error


def test_a_provider_echoing_the_credential_is_redacted(organization):
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, json={"ok": False, "error": f"bad token {SECRET}"})
        result = check_integration(oauth(organization, "slack"))
    assert result.status == UNHEALTHY
    assert SECRET not in result.error
    assert "[redacted]" in result.error


def test_a_slow_2xx_is_degraded(organization, receiver, settings):
    settings.HEALTH_CHECK_SLOW_MS = 50
    receiver.default = Reply(delay=0.15)
    result = check_integration(custom(organization, receiver.url))
    assert result.status == DEGRADED
    assert result.response_time_ms >= 150
    assert "Slow response" in result.error
    assert receiver.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_a_real_timeout_is_unhealthy(organization, receiver, settings):
    settings.HEALTH_CHECK_TIMEOUT = 0.2
    receiver.default = Reply(delay=1.0)
    result = check_integration(custom(organization, receiver.url))
    assert result.status == UNHEALTHY
    assert "Timed out after 0.2 s" in result.error


def test_private_addresses_are_refused_unless_allowed(organization, receiver, settings):
    settings.ALLOW_PRIVATE_URLS = False
    result = check_integration(custom(organization, receiver.url))
    assert result.status == UNHEALTHY
    assert "private or reserved address" in result.error
    assert receiver.requests == []
    settings.ALLOW_PRIVATE_URLS = True
    assert check_integration(custom(organization, receiver.url, name="again")).status == HEALTHY


def test_never_connected_integrations_say_why(organization, use_fernet_keys):
    never_authorized = OAuthIntegrationFactory(organization=organization)
    no_credentials = IntegrationFactory(organization=organization, credentials={})
    pending = IntegrationFactory(organization=organization, status=Integration.Status.PENDING)
    assert "never authorized" in not_connected_reason(never_authorized)
    assert "no credentials" in not_connected_reason(no_credentials)
    assert "pending" in not_connected_reason(pending)
    assert not_connected_reason(oauth(organization)) is None
    assert not_connected_reason(api_key(organization)) is None
    unreadable = api_key(organization, key="lost-with-its-key")
    use_fernet_keys(["another key entirely"])
    # Credentials no key decrypts belong to a connected integration: a fault, not "never connected".
    assert not_connected_reason(Integration.objects.get(pk=unreadable.pk)) is None
