"""Health checks of jwt integrations: a token minted through get_access_token, sent as Bearer
to the provider's check URL. Every catalogue provider with auth type jwt reaches healthy."""

import json
from http import HTTPStatus

import pytest
import responses
from responses import matchers

from health.checks import HEALTHY, UNHEALTHY, check_integration
from integrations import providers
from integrations.models import Integration
from tests.integrations.grants.authorization_server import LocalAuthorizationServer
from tests.integrations.grants.conftest import DOCUSIGN_DEMO, DOCUSIGN_TOKEN_URL, custom_jwt, docusign_jwt, google_jwt
from tests.integrations.grants.keys import GOOGLE_TOKEN_URL, public_pem, rsa_pem

pytestmark = pytest.mark.django_db

MINTED = "minted-token-for-the-check"
TOKEN = json.dumps({"access_token": MINTED, "token_type": "Bearer", "expires_in": 3600})
CHECK_URLS = {
    "docusign": f"https://{DOCUSIGN_DEMO}/oauth/userinfo",
    "google_calendar": "https://www.googleapis.com/calendar/v3/users/me/calendarList/primary",
    "gmail": "https://gmail.googleapis.com/gmail/v1/users/me/profile",
}
TOKEN_URLS = {"docusign": DOCUSIGN_TOKEN_URL, "google_calendar": GOOGLE_TOKEN_URL, "gmail": GOOGLE_TOKEN_URL}
JWT_PROVIDERS = sorted(provider.name for provider in providers.provider_list() if providers.JWT in provider.auth_types)


def catalogue_jwt(organization, provider: str) -> Integration:
    if provider == "docusign":
        return docusign_jwt(organization)
    return google_jwt(organization, provider)


def test_every_jwt_provider_is_covered_below():
    assert JWT_PROVIDERS == sorted([*CHECK_URLS, "custom"])


@pytest.mark.parametrize("provider", sorted(CHECK_URLS))
def test_catalogue_jwt_integration_is_healthy_with_a_minted_token(organization, provider):
    integration = catalogue_jwt(organization, provider)
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URLS[provider], body=TOKEN, headers={"Content-Type": "application/json"})
        mock.get(
            CHECK_URLS[provider],
            json={"sub": "user"},
            match=[matchers.header_matcher({"Authorization": f"Bearer {MINTED}"})],
        )
        result = check_integration(integration)
        assert len(mock.calls) == 2
    assert (result.status, result.error) == (HEALTHY, "")
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == MINTED
    with responses.RequestsMock() as mock:  # the next check reuses the token: no mint
        mock.get(CHECK_URLS[provider], json={"sub": "user"})
        assert check_integration(integration).status == HEALTHY
        assert len(mock.calls) == 1


def test_custom_jwt_integration_is_healthy_against_a_real_authorization_server(organization):
    server = LocalAuthorizationServer().start()
    try:
        server.register("acme-hiring", public_pem(rsa_pem()))
        result = check_integration(custom_jwt(organization, server))
    finally:
        server.stop()
    assert (result.status, result.error) == (HEALTHY, "")
    assert len(server.issued) == 1  # /me answered 200 only to the token the server issued


def test_a_refused_mint_is_unhealthy_and_says_why_without_secrets(organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, status=HTTPStatus.BAD_REQUEST, json={"error": "consent_required"})
        result = check_integration(integration)
    assert result.status == UNHEALTHY
    assert "Could not mint an access token" in result.error
    assert "consent_required" in result.error
    assert not any(line in result.error for line in rsa_pem().splitlines()[1:-1])


def without_check_url(integration: Integration) -> Integration:
    config = {key: value for key, value in integration.config.items() if key != "health_check_url"}
    Integration.objects.filter(pk=integration.pk).update(config=config)
    integration.refresh_from_db()
    return integration


def test_custom_jwt_without_a_check_url_mints_and_is_healthy(organization):
    """Without config.health_check_url there is no endpoint to call: the mint is the check
    (it used to be degraded, "no check", with a config_invalid issue open for good)."""
    from health.services import health_check_now
    from integrations.models import ConnectionIssue

    server = LocalAuthorizationServer().start()
    try:
        server.register("acme-hiring", public_pem(rsa_pem()))
        integration = without_check_url(custom_jwt(organization, server))
        Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.ACTIVE)
        result = check_integration(integration)
        record = health_check_now(integration=integration)
    finally:
        server.stop()
    assert result.status == HEALTHY
    assert "no endpoint was called" in result.error
    assert len(server.issued) == 1  # minted once, reused by the second check
    assert record.status == HEALTHY
    integration.refresh_from_db()
    assert integration.health_status == HEALTHY
    assert integration.credentials["access_token"] == server.issued[0].access_token
    assert not ConnectionIssue.objects.filter(integration=integration).exists()


def test_custom_jwt_without_a_check_url_whose_mint_is_refused_is_unhealthy(organization):
    server = LocalAuthorizationServer().start()
    try:
        server.register("acme-hiring", public_pem(rsa_pem("registered")))
        integration = custom_jwt(organization, server, credentials={"private_key": rsa_pem("another")})
        result = check_integration(without_check_url(integration))
    finally:
        server.stop()
    assert result.status == UNHEALTHY
    assert "Could not mint an access token" in result.error and "invalid_grant" in result.error
