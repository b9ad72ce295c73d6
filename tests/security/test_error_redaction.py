"""What a provider answers never carries our secrets into `last_error`, logs, exceptions or
API responses: redacted before it is cut, in every encoding (URL-encoded, base64, and
`base64(client_id:client_secret)` as sent in a Basic header), and no raw provider body is
kept at all, only the provider's error code and description, bounded."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import quote

import pytest
import responses
from django.utils import timezone

from health.checks import check_integration
from integrations.models import Integration
from integrations.services import MAX_ERROR_LENGTH, integration_record_error
from tests.integrations.factories import OAuthIntegrationFactory

pytestmark = pytest.mark.django_db

DOCUSIGN_TOKEN = "https://account.docusign.com/oauth/token"
PLATFORM_ID = "docusign-app-id"  # "id:" not a multiple of 3 bytes: base64 does not align
PLATFORM_SECRET = "PLATFORM+SECRET/7c2e=="
REFRESH = "refresh-token-4b8d"
RAW_BODY_MARKER = "RAW-BODY-MARKER-stack-trace"


@pytest.fixture(autouse=True)
def platform_client(settings):
    settings.DOCUSIGN_CLIENT_ID = PLATFORM_ID
    settings.DOCUSIGN_CLIENT_SECRET = PLATFORM_SECRET


def basic_pair() -> str:
    return base64.b64encode(f"{PLATFORM_ID}:{PLATFORM_SECRET}".encode()).decode()


def forms_of_the_secret() -> list[str]:
    return [
        PLATFORM_SECRET,
        quote(PLATFORM_SECRET, safe=""),
        base64.b64encode(PLATFORM_SECRET.encode()).decode(),
        basic_pair(),
        REFRESH,
        base64.b64encode(REFRESH.encode()).decode(),
    ]


def echo() -> str:
    """What a careless token endpoint echoes back: our request, in every encoding."""
    return (
        f"Authorization: Basic {basic_pair()} body=refresh_token={REFRESH}&secret={quote(PLATFORM_SECRET, safe='')} "
        f"b64={base64.b64encode(PLATFORM_SECRET.encode()).decode()} b64r={base64.b64encode(REFRESH.encode()).decode()}"
    )


def docusign(organization) -> Integration:
    return OAuthIntegrationFactory(
        organization=organization,
        provider="docusign",
        config={"account_domain": "account.docusign.com"},
        status=Integration.Status.ACTIVE,
        credentials={"access_token": "old-access", "refresh_token": REFRESH},
        token_expires_at=timezone.now() + timedelta(hours=1),
    )


def assert_nothing_leaked(*texts: str) -> None:
    for text in texts:
        for form in forms_of_the_secret():
            assert form not in text
        assert RAW_BODY_MARKER not in text


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (HTTPStatus.INTERNAL_SERVER_ERROR, f"{RAW_BODY_MARKER} {echo()}"),
        (HTTPStatus.OK, f"<html>{RAW_BODY_MARKER} {echo()}</html>"),
        (HTTPStatus.UNAUTHORIZED, f"{RAW_BODY_MARKER} {echo()}"),
        (HTTPStatus.BAD_REQUEST, {"error": "invalid_client", "error_description": echo(), "debug": RAW_BODY_MARKER}),
    ],
    ids=["5xx", "200-not-json", "4xx-not-json", "oauth-error-echoing"],
)
def test_an_echoing_token_endpoint_reaches_no_last_error_log_or_response(
    organization, api_client, caplog, status, body
):
    integration = docusign(organization)
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as outbound:
        kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
        outbound.post(DOCUSIGN_TOKEN, status=status, **kwargs)
        response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
        assert outbound.calls[0].request.headers["Authorization"] == f"Basic {basic_pair()}"
    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.BAD_GATEWAY)
    integration.refresh_from_db()
    assert integration.last_error
    shown = api_client.get(f"/api/integrations/{integration.pk}/").content.decode()
    assert_nothing_leaked(integration.last_error, response.content.decode(), shown, caplog.text)
    if isinstance(body, dict):  # the provider's own words survive, redacted
        assert "invalid_client" in integration.last_error


def test_a_secret_cut_at_the_truncation_boundary_does_not_survive(organization):
    integration = docusign(organization)
    for offset in range(1, len(PLATFORM_SECRET)):
        error = "x" * (MAX_ERROR_LENGTH - offset) + PLATFORM_SECRET
        recorded = integration_record_error(integration=integration, error=error).last_error
        assert len(recorded) <= MAX_ERROR_LENGTH
        assert PLATFORM_SECRET[:offset] not in recorded.replace("x", "")


def test_the_basic_pair_of_the_integrations_own_app_is_hidden_in_a_sync_error(organization, api_client):
    integration = OAuthIntegrationFactory(
        organization=organization,
        provider="docusign",
        config={"account_domain": "account.docusign.com", "client_id": "own-app"},
        credentials={"client_secret": "own-secret-31f", "access_token": "a"},
    )
    pair = base64.b64encode(b"own-app:own-secret-31f").decode()
    response = api_client.post(
        f"/api/integrations/{integration.pk}/sync/", {"success": False, "error": f"upstream said {pair}"}, format="json"
    )
    assert response.status_code == HTTPStatus.OK
    integration.refresh_from_db()
    assert pair not in integration.last_error and pair not in response.content.decode()


def test_a_health_check_provider_error_is_redacted_before_it_is_cut(organization):
    token = "xoxb-SLACKTOKEN-0123456789abcdef"
    integration = OAuthIntegrationFactory(
        organization=organization,
        provider="slack",
        status=Integration.Status.ACTIVE,
        credentials={"access_token": token},
    )
    with responses.RequestsMock() as outbound:
        outbound.get("https://slack.com/api/auth.test", json={"ok": False, "error": "e" * 95 + token})
        result = check_integration(integration)
    assert "SLACKTOK" not in result.error and "xoxb" not in result.error
