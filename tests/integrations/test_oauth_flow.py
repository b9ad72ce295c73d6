import base64
import hashlib
import logging
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.utils import timezone

from integrations.models import Integration, OAuthState
from integrations.oauth.flows import hash_state
from tests.api_errors import error_fields
from tests.integrations.factories import IntegrationFactory
from tests.integrations.oauth_helpers import (
    CUSTOM_CONFIG,
    GOOGLE_TOKEN_URL,
    form,
    oauth_integration,
    query,
    token_body,
)

pytestmark = pytest.mark.django_db

CLIENT_SECRET = "google-client-SECRET-9f8e7d"
CALLBACK = "https://hire.example.com/api/integrations/oauth/callback/"


@pytest.fixture(autouse=True)
def oauth_settings(settings, monkeypatch):
    settings.PUBLIC_BASE_URL = "https://hire.example.com"
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = CLIENT_SECRET
    monkeypatch.setenv("SLACK_CLIENT_ID", "slack-client")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "slack-secret")
    monkeypatch.setenv("MICROSOFT_CLIENT_ID", "ms-client")
    monkeypatch.setenv("MICROSOFT_CLIENT_SECRET", "ms-secret")
    monkeypatch.setenv("DOCUSIGN_CLIENT_ID", "ds-client")
    monkeypatch.setenv("DOCUSIGN_CLIENT_SECRET", "ds-secret")
    return settings


@pytest.fixture
def google(organization):
    return oauth_integration(organization)


def authorize(client, integration) -> dict:
    response = client.get(f"/api/integrations/{integration.pk}/oauth/authorize/")
    assert response.status_code == HTTPStatus.OK, response.json()
    return response.json()


def callback(client, integration, code, state):
    return client.post(
        f"/api/integrations/{integration.pk}/oauth/callback/", {"code": code, "state": state}, format="json"
    )


def unchanged(integration) -> bool:
    fresh = Integration.objects.get(pk=integration.pk)
    return (
        fresh.status == integration.status
        and fresh.credentials == integration.credentials
        and fresh.token_expires_at == integration.token_expires_at
    )


# --- the authorization URL --------------------------------------------------------------


def test_google_authorization_url(api_client, google):
    before = timezone.now()
    body = authorize(api_client, google)
    url = body["authorization_url"]
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    params = query(url)
    assert params["response_type"] == "code"
    assert params["client_id"] == "google-client"
    assert params["redirect_uri"] == CALLBACK
    assert params["scope"] == (
        "https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar.events"
    )
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["state"] == body["state"]
    assert params["code_challenge_method"] == "S256"
    assert len(body["state"]) >= 40
    assert CLIENT_SECRET not in url
    expires_at = timezone.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(minutes=9) < expires_at <= timezone.now() + timedelta(minutes=10)
    row = OAuthState.objects.get(state_hash=hash_state(body["state"]))
    assert row.integration == google
    assert row.organization == google.organization
    assert body["state"] not in str(OAuthState.objects.filter(pk=row.pk).values("state_hash").get())


def test_states_are_unique(api_client, google):
    assert authorize(api_client, google)["state"] != authorize(api_client, google)["state"]


def test_pkce_verifier_and_challenge_pair(api_client, google):
    body = authorize(api_client, google)
    verifier = OAuthState.objects.get(state_hash=hash_state(body["state"])).code_verifier
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query(body["authorization_url"])["code_challenge"] == expected
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body(), content_type="application/json")
        assert callback(api_client, google, "the-code", body["state"]).status_code == HTTPStatus.OK
        assert form(mock.calls[0].request)["code_verifier"] == verifier


def test_microsoft_authorization_url_uses_tenant_and_redirect_env(api_client, organization, monkeypatch):
    monkeypatch.setenv("MICROSOFT_REDIRECT_URI", "https://app.example.com/ms/callback")
    default = oauth_integration(organization, "microsoft_outlook")
    params = query(authorize(api_client, default)["authorization_url"])
    assert authorize(api_client, default)["authorization_url"].startswith(
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?"
    )
    assert params["scope"] == "Calendars.ReadWrite User.Read offline_access"
    assert params["redirect_uri"] == "https://app.example.com/ms/callback"
    assert params["client_id"] == "ms-client"
    assert "code_challenge" in params
    assert "access_type" not in params
    tenant = oauth_integration(organization, "microsoft_teams", config={"tenant": "contoso.onmicrosoft.com"})
    url = authorize(api_client, tenant)["authorization_url"]
    assert urlsplit(url).path == "/contoso.onmicrosoft.com/oauth2/v2.0/authorize"


def test_slack_authorization_url_has_comma_scopes_and_no_pkce(api_client, organization):
    slack = oauth_integration(organization, "slack", config={"scopes": ["chat:write", "channels:read"]})
    body = authorize(api_client, slack)
    params = query(body["authorization_url"])
    assert body["authorization_url"].startswith("https://slack.com/oauth/v2/authorize?")
    assert params["scope"] == "chat:write,channels:read"
    assert params["client_id"] == "slack-client"
    assert "code_challenge" not in params
    assert OAuthState.objects.get(state_hash=hash_state(body["state"])).code_verifier == ""


def test_custom_authorization_url(api_client, organization):
    custom = oauth_integration(organization, "custom", config=CUSTOM_CONFIG, credentials={"client_secret": "cs"})
    body = authorize(api_client, custom)
    assert body["authorization_url"].startswith("https://auth.example.com/oauth/authorize?")
    params = query(body["authorization_url"])
    assert params["client_id"] == "custom-client"
    assert params["scope"] == "read write"
    assert params["redirect_uri"] == CALLBACK
    assert params["code_challenge_method"] == "S256"
    no_pkce = oauth_integration(organization, "custom", name="no pkce", config={**CUSTOM_CONFIG, "use_pkce": False})
    assert "code_challenge" not in query(authorize(api_client, no_pkce)["authorization_url"])


def test_authorize_errors_are_4xx(api_client, organization, settings):
    api_key = IntegrationFactory(organization=organization)
    response = api_client.get(f"/api/integrations/{api_key.pk}/oauth/authorize/")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    settings.GOOGLE_CLIENT_ID = ""
    google = oauth_integration(organization, name="no client")
    response = api_client.get(f"/api/integrations/{google.pk}/oauth/authorize/")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "GOOGLE_CLIENT_ID" in response.json()["detail"]


# --- the callback: happy path -----------------------------------------------------------


def test_full_happy_path_stores_tokens_encrypted_and_activates(api_client, google, caplog):
    caplog.set_level(logging.DEBUG)
    state = authorize(api_client, google)["state"]
    with responses.RequestsMock() as mock:
        mock.post(
            GOOGLE_TOKEN_URL,
            body=token_body("ACCESS-sentinel-1", "REFRESH-sentinel-1", scope="calendar"),
            content_type="application/json",
        )
        response = callback(api_client, google, "CODE-sentinel", state)
        sent = form(mock.calls[0].request)
    assert response.status_code == HTTPStatus.OK, response.json()
    assert sent["grant_type"] == "authorization_code"
    assert sent["code"] == "CODE-sentinel"
    assert sent["redirect_uri"] == CALLBACK
    assert sent["client_id"] == "google-client"
    assert sent["client_secret"] == CLIENT_SECRET  # client_secret_post
    body = response.json()
    assert body["status"] == "active"
    assert body["credential_fields"] == ["access_token", "refresh_token", "scope", "token_type"]
    assert body["token_expires_at"] is not None
    text = response.content.decode() + caplog.text
    for secret in ["ACCESS-sentinel-1", "REFRESH-sentinel-1", "CODE-sentinel", CLIENT_SECRET, state]:
        assert secret not in text
    google.refresh_from_db()
    assert google.credentials["access_token"] == "ACCESS-sentinel-1"
    assert google.credentials["refresh_token"] == "REFRESH-sentinel-1"
    assert google.credentials["token_type"] == "Bearer"
    assert timedelta(minutes=59) < google.token_expires_at - timezone.now() <= timedelta(hours=1)


def test_client_secret_basic_for_docusign(api_client, organization):
    docusign = oauth_integration(organization, "docusign")
    state = authorize(api_client, docusign)["state"]
    with responses.RequestsMock() as mock:
        mock.post("https://account.docusign.com/oauth/token", body=token_body(), content_type="application/json")
        assert callback(api_client, docusign, "c", state).status_code == HTTPStatus.OK
        request = mock.calls[0].request
    expected = base64.b64encode(b"ds-client:ds-secret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert "client_secret" not in form(request)


def test_browser_callback_without_api_key(anon_client, api_client, google):
    state = authorize(api_client, google)["state"]
    assert anon_client.post("/api/integrations/oauth/start/", {"state": state}).status_code == HTTPStatus.FOUND
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body(), content_type="application/json")
        response = anon_client.get(f"/api/integrations/oauth/callback/?code=browser-code&state={state}")
    assert response.status_code == HTTPStatus.OK
    content = response.content.decode()
    assert "Connected" in content
    assert f"/admin/integrations/integration/{google.pk}/change/" in content
    assert "browser-code" not in content
    assert response["Referrer-Policy"] == "no-referrer"
    google.refresh_from_db()
    assert google.status == Integration.Status.ACTIVE
    # The same state does not work twice.
    response = anon_client.get(f"/api/integrations/oauth/callback?code=browser-code&state={state}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "already used" in response.content.decode()


def test_browser_callback_access_denied(anon_client, api_client, google):
    state = authorize(api_client, google)["state"]
    response = anon_client.get(f"/api/integrations/oauth/callback/?error=access_denied&state={state}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "access_denied" in response.content.decode()
    assert "<html" in response.content.decode()
    assert unchanged(google)
    assert anon_client.get("/api/integrations/oauth/callback/").status_code == HTTPStatus.BAD_REQUEST


# --- the callback: state attacks --------------------------------------------------------


@responses.activate
def test_tampered_state_is_400_and_changes_nothing(api_client, google):
    state = authorize(api_client, google)["state"]
    response = callback(api_client, google, "c", state[:-2] + "xx")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "state" in response.json()["detail"]
    assert unchanged(google)
    assert len(responses.calls) == 0


@responses.activate
def test_expired_state_is_400(api_client, google):
    state = authorize(api_client, google)["state"]
    OAuthState.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = callback(api_client, google, "c", state)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "expired" in response.json()["detail"]
    assert unchanged(google)
    assert len(responses.calls) == 0


def test_replayed_state_is_400_and_not_exchanged_twice(api_client, google):
    state = authorize(api_client, google)["state"]
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("first"), content_type="application/json")
        assert callback(api_client, google, "c", state).status_code == HTTPStatus.OK
        response = callback(api_client, google, "c", state)
        assert len(mock.calls) == 1
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "already used" in response.json()["detail"]
    google.refresh_from_db()
    assert google.credentials["access_token"] == "first"


def test_state_of_another_integration_is_400_and_not_consumed(api_client, organization, google):
    other = oauth_integration(organization, "gmail")
    state = authorize(api_client, google)["state"]
    with responses.RequestsMock() as mock:
        response = callback(api_client, other, "c", state)
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert "another integration" in response.json()["detail"]
        assert unchanged(other) and unchanged(google)
        # The rightful integration can still use it.
        mock.post(GOOGLE_TOKEN_URL, body=token_body(), content_type="application/json")
        assert callback(api_client, google, "c", state).status_code == HTTPStatus.OK


@responses.activate
def test_state_of_another_organization_is_400(api_client, other_client, google):
    theirs = oauth_integration(other_client.organization)
    state = authorize(api_client, google)["state"]
    response = callback(other_client, theirs, "c", state)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    # And our integration is invisible to them.
    assert callback(other_client, google, "c", state).status_code == HTTPStatus.NOT_FOUND
    assert other_client.get(f"/api/integrations/{google.pk}/oauth/authorize/").status_code == HTTPStatus.NOT_FOUND
    assert other_client.post(f"/api/integrations/{google.pk}/oauth/refresh/").status_code == HTTPStatus.NOT_FOUND
    assert unchanged(google) and unchanged(theirs)
    assert len(responses.calls) == 0


def test_read_only_key_cannot_use_oauth_routes(read_only_client, api_client, google):
    state = authorize(api_client, google)["state"]
    base = f"/api/integrations/{google.pk}/oauth/"
    assert read_only_client.get(f"{base}authorize/").status_code == HTTPStatus.FORBIDDEN
    assert callback(read_only_client, google, "c", state).status_code == HTTPStatus.FORBIDDEN
    assert read_only_client.post(f"{base}refresh/").status_code == HTTPStatus.FORBIDDEN
    assert unchanged(google)


def test_missing_code_or_state_is_400(api_client, google):
    response = api_client.post(f"/api/integrations/{google.pk}/oauth/callback/", {"state": "x"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "code" in error_fields(response)


# --- the callback: provider errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("mock_kwargs", "status", "text"),
    [
        (
            {"status": 400, "json": {"error": "invalid_grant", "error_description": "Bad Request"}},
            HTTPStatus.BAD_REQUEST,
            "invalid_grant",
        ),
        ({"status": 503, "body": "upstream unavailable"}, HTTPStatus.BAD_GATEWAY, "503"),
        ({"body": requests.Timeout("slow")}, HTTPStatus.BAD_GATEWAY, "timed out"),
        ({"body": requests.ConnectionError("refused")}, HTTPStatus.BAD_GATEWAY, "ConnectionError"),
        ({"status": 200, "body": "<html>not json</html>"}, HTTPStatus.BAD_GATEWAY, "no JSON"),
    ],
)
def test_provider_errors_leave_the_integration_unchanged(api_client, google, mock_kwargs, status, text):
    state = authorize(api_client, google)["state"]
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, **mock_kwargs)
        response = callback(api_client, google, "CODE-sentinel", state)
    assert response.status_code == status
    assert text in response.json()["detail"]
    assert "CODE-sentinel" not in response.content.decode()
    assert CLIENT_SECRET not in response.content.decode()
    assert unchanged(google)


def test_slack_ok_false_is_a_refusal(api_client, organization):
    slack = oauth_integration(organization, "slack")
    state = authorize(api_client, slack)["state"]
    with responses.RequestsMock() as mock:
        mock.post("https://slack.com/api/oauth.v2.access", json={"ok": False, "error": "invalid_code"})
        response = callback(api_client, slack, "c", state)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "invalid_code" in response.json()["detail"]
    assert unchanged(slack)


def test_browser_callback_shows_provider_error_page(anon_client, api_client, google):
    state = authorize(api_client, google)["state"]
    assert anon_client.post("/api/integrations/oauth/start/", {"state": state}).status_code == HTTPStatus.FOUND
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=502, body="bad gateway")
        response = anon_client.get(f"/api/integrations/oauth/callback/?code=c&state={state}")
    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert "Authorization failed" in response.content.decode()
    assert unchanged(google)


# --- custom provider: any standards-compliant server -------------------------------------


def test_custom_provider_code_pkce_and_refresh_with_basic_auth(api_client, organization):
    config = {**CUSTOM_CONFIG, "token_auth_method": "client_secret_basic"}
    custom = oauth_integration(organization, "custom", config=config, credentials={"client_secret": "custom-secret"})
    assert custom.status == Integration.Status.PENDING
    body = authorize(api_client, custom)
    challenge = query(body["authorization_url"])["code_challenge"]
    with responses.RequestsMock() as mock:
        mock.post(
            CUSTOM_CONFIG["token_url"], body=token_body("a1", "r1", expires_in=60), content_type="application/json"
        )
        mock.post(CUSTOM_CONFIG["token_url"], body=token_body("a2", "r2"), content_type="application/json")
        assert callback(api_client, custom, "code-1", body["state"]).status_code == HTTPStatus.OK
        exchange = form(mock.calls[0].request)
        verifier = exchange["code_verifier"]
        assert base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() == challenge
        assert mock.calls[0].request.headers["Authorization"].startswith("Basic ")
        response = api_client.post(f"/api/integrations/{custom.pk}/oauth/refresh/")
        assert response.status_code == HTTPStatus.OK
        refresh = form(mock.calls[1].request)
    assert refresh == {"grant_type": "refresh_token", "refresh_token": "r1"}
    custom.refresh_from_db()
    assert custom.credentials["access_token"] == "a2"
    assert custom.credentials["refresh_token"] == "r2"
    assert custom.credentials["client_secret"] == "custom-secret"
    assert response.json()["token_expires_at"] == custom.token_expires_at.isoformat().replace("+00:00", "Z")
