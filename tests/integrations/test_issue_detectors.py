"""The token side as a detector (integrations/detectors.py): refresh and authorization
outcomes become connection issues; a dead grant announces `integration.reauthorization_required`."""

from __future__ import annotations

import json
from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone

from integrations.detectors import missing_scopes
from integrations.models import ConnectionIssue, Integration
from integrations.oauth.client import TokenSet
from integrations.oauth.flows import oauth_store_tokens
from integrations.oauth.tokens import ReauthorizationRequired, get_access_token, oauth_refresh_token
from tests.integrations.factories import OAuthIntegrationFactory
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, token_body
from webhooks.models import Event

pytestmark = pytest.mark.django_db

Kind = ConnectionIssue.Kind
SECRET = "google-SECRET-5ebe2294ecd0e0f08eab"
SLACK_TOKEN_URL = "https://slack.com/api/oauth.v2.access"
MS_TOKEN_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
GOOGLE_SCOPES = "https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar.events"


@pytest.fixture(autouse=True)
def oauth_apps(settings, monkeypatch):
    settings.PUBLIC_BASE_URL = "https://hire.example.com"
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = SECRET
    monkeypatch.setenv("SLACK_CLIENT_ID", "slack-client")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "slack-" + SECRET)
    monkeypatch.setenv("MICROSOFT_CLIENT_ID", "ms-client")
    monkeypatch.setenv("MICROSOFT_CLIENT_SECRET", "ms-" + SECRET)


def connected(organization, provider="google_calendar", **kwargs) -> Integration:
    values = {
        "organization": organization,
        "provider": provider,
        "status": Integration.Status.ACTIVE,
        "credentials": {"access_token": "old-" + SECRET, "refresh_token": "refresh-" + SECRET},
        "token_expires_at": timezone.now() - timedelta(minutes=1),
    }
    return OAuthIntegrationFactory(**{**values, **kwargs})


def issue(integration, kind) -> ConnectionIssue | None:
    return ConnectionIssue.objects.filter(integration=integration, kind=kind).exclude(status="resolved").first()


def refused(
    mock, url=GOOGLE_TOKEN_URL, error="invalid_grant", status=400, description="Token has been expired or revoked."
):
    mock.post(url, status=status, json={"error": error, "error_description": description})


def test_a_dead_grant_opens_reauthorization_required_and_announces_it_once(organization):
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        refused(mock)  # Google's documented answer for a revoked refresh token
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
    found = issue(integration, Kind.REAUTHORIZATION_REQUIRED)
    reconnect = f"https://hire.example.com/admin/integrations/integration/{integration.pk}/reconnect/"
    assert found.status == "open"
    assert found.details == {"reconnect_url": reconnect, "error": "invalid_grant"}  # no consent URL for OAuth
    assert "Token has been expired or revoked" in found.message and "reconnect" in found.message
    integration.refresh_from_db()
    assert integration.needs_reauthorization and integration.token_refresh_failures == 1
    event = Event.objects.get(type="integration.reauthorization_required")
    assert event.payload == {
        "integration": {"id": str(integration.pk), "name": integration.name, "provider": "google_calendar"},
        "issue_id": str(found.pk),
        "message": found.message,
        "reconnect_url": reconnect,
        "consent_url": None,
    }
    assert Event.objects.get(type="integration.issue.opened").payload["issue"]["kind"] == "reauthorization_required"
    # Asked again: refused without calling the provider, and announced no second time.
    with pytest.raises(ReauthorizationRequired):
        get_access_token(integration)
    assert Event.objects.filter(type="integration.reauthorization_required").count() == 1
    assert SECRET not in json.dumps(list(Event.objects.values_list("payload", flat=True)))
    assert SECRET not in found.message + json.dumps(found.details)


def test_transient_refresh_failures_open_provider_unavailable_after_three(organization):
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=503, body="unavailable")
        for attempt in range(3):
            with pytest.raises(Exception, match="HTTP 503"):
                oauth_refresh_token(integration=integration, force=True)  # force: past the backoff
            expected = "open" if attempt == 2 else "pending"
            assert issue(integration, Kind.PROVIDER_UNAVAILABLE).status == expected
    found = issue(integration, Kind.PROVIDER_UNAVAILABLE)
    assert found.count == 3 and found.details == {"source": "token_endpoint"}
    assert not issue(integration, Kind.REAUTHORIZATION_REQUIRED)
    integration.refresh_from_db()
    assert (integration.token_refresh_attempts, integration.token_refresh_failures) == (3, 3)
    # Three refreshes that work: a sustained recovery.
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("fresh"), content_type="application/json")
        for _ in range(3):
            oauth_refresh_token(integration=integration, force=True)
    assert ConnectionIssue.objects.get(pk=found.pk).status == "resolved"


def test_a_refused_client_is_credentials_rejected(organization):
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        refused(mock, error="invalid_client", status=401, description="The OAuth client was not found.")
        with pytest.raises(Exception, match="invalid_client"):
            get_access_token(integration)
    found = issue(integration, Kind.CREDENTIALS_REJECTED)
    assert found.status == "open" and found.details["error"] == "invalid_client"
    assert "client credentials" in found.message and SECRET not in found.message


def test_authorizing_again_resolves_reauthorization_at_once_and_clears_the_mark(organization):
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        refused(mock)
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
    integration.refresh_from_db()
    assert integration.status == "error" and integration.needs_reauthorization
    oauth_store_tokens(
        integration=integration,
        tokens=TokenSet(access_token="new", refresh_token="new-refresh", scope=GOOGLE_SCOPES, expires_in=3600),
        authorized=True,
    )
    integration.refresh_from_db()
    assert (integration.status, integration.needs_reauthorization) == ("active", False)
    assert issue(integration, Kind.REAUTHORIZATION_REQUIRED) is None
    assert ConnectionIssue.objects.get(kind=Kind.REAUTHORIZATION_REQUIRED).status == "resolved"
    assert Event.objects.filter(type="integration.issue.resolved").count() == 1


def test_a_refresh_that_works_again_resolves_reauthorization(organization):
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        refused(mock)
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
    Integration.objects.filter(pk=integration.pk).update(needs_reauthorization=False)  # e.g. a retried grant
    integration.refresh_from_db()
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("fresh"), content_type="application/json")
        assert get_access_token(integration) == "fresh"
    assert issue(integration, Kind.REAUTHORIZATION_REQUIRED) is None


# --- scopes -------------------------------------------------------------------------------


def test_fewer_scopes_granted_than_configured_opens_missing_scopes_and_granting_them_resolves(organization):
    integration = connected(organization)
    only_readonly = "https://www.googleapis.com/auth/calendar.readonly"
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("a", scope=only_readonly), content_type="application/json")
        get_access_token(integration)
    found = issue(integration, Kind.MISSING_SCOPES)
    assert found.status == "open"
    assert found.details["missing_scopes"] == ["https://www.googleapis.com/auth/calendar.events"]
    assert found.details["granted_scopes"] == [only_readonly]
    assert found.details["reconnect_url"].endswith(f"/admin/integrations/integration/{integration.pk}/reconnect/")
    integration.refresh_from_db()
    assert integration.granted_scopes == [only_readonly]
    # A reconnect that grants them all resolves the issue at once.
    oauth_store_tokens(
        integration=integration, tokens=TokenSet(access_token="b", scope=GOOGLE_SCOPES, expires_in=60), authorized=True
    )
    assert issue(integration, Kind.MISSING_SCOPES) is None
    assert ConnectionIssue.objects.get(pk=found.pk).status == "resolved"


def test_an_answer_without_scope_says_nothing_about_scopes(organization):
    integration = connected(organization, granted_scopes=["https://www.googleapis.com/auth/calendar.readonly"])
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("a"), content_type="application/json")
        get_access_token(integration)
    assert not ConnectionIssue.objects.filter(kind=Kind.MISSING_SCOPES).exists()


def test_slack_scopes_are_comma_separated(organization):
    slack = connected(organization, "slack", config={"scopes": ["chat:write", "channels:read"]})
    with responses.RequestsMock() as mock:
        mock.post(
            SLACK_TOKEN_URL,
            json={
                "ok": True,
                "access_token": "xoxb-new",
                "refresh_token": "xoxe-1",
                "expires_in": 43200,
                "scope": "chat:write,users:read",
            },
        )
        get_access_token(slack)
    found = issue(slack, Kind.MISSING_SCOPES)
    assert found.details["missing_scopes"] == ["channels:read"]
    assert found.details["granted_scopes"] == ["chat:write", "users:read"]
    with responses.RequestsMock() as mock:
        mock.post(
            SLACK_TOKEN_URL,
            json={
                "ok": True,
                "access_token": "xoxb-2",
                "refresh_token": "xoxe-2",
                "expires_in": 43200,
                "scope": "chat:write,channels:read",
            },
        )
        oauth_refresh_token(integration=slack, force=True)
    assert issue(slack, Kind.MISSING_SCOPES) is None


def test_microsoft_never_lists_offline_access_and_it_is_not_missing(organization):
    outlook = connected(organization, "microsoft_outlook", config={"tenant": "common"})
    with responses.RequestsMock() as mock:
        # Entra answers the short names it granted, without offline_access (a refresh token shows it).
        body = token_body("ms", "ms-refresh", scope="Calendars.ReadWrite openid User.Read profile email")
        mock.post(MS_TOKEN_URL, body=body, content_type="application/json")
        get_access_token(outlook)
    assert not ConnectionIssue.objects.filter(kind=Kind.MISSING_SCOPES).exists()


def test_scope_comparison():
    assert missing_scopes(["User.Read", "Mail.Send"], ["https://graph.microsoft.com/user.read"]) == ["Mail.Send"]
    assert missing_scopes(["offline_access", "email"], ["EMAIL"]) == []
    assert missing_scopes(["read", "write"], []) == ["read", "write"]


def test_the_api_refresh_reports_issues_too(api_client, organization):
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        refused(mock)
        response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    listed = api_client.get(f"/api/integrations/{integration.pk}/issues/").json()["results"]
    assert [i["kind"] for i in listed] == ["reauthorization_required"]


def test_the_events_arrive_signed_at_a_subscribed_webhook(organization, receiver):
    from standardwebhooks import Webhook as ReferenceVerifier

    from webhooks import tasks
    from webhooks.services import webhook_create

    hook = webhook_create(
        organization=organization,
        name="ops",
        url=receiver.url,
        events=["integration.reauthorization_required", "integration.issue.opened"],
    )
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        refused(mock)
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
    tasks.deliver_due()
    received = receiver.wait_for(2)
    by_type = {r.json()["type"]: r for r in received}
    assert set(by_type) == {"integration.reauthorization_required", "integration.issue.opened"}
    for request in received:
        ReferenceVerifier(hook.secret).verify(request.body, request.headers)  # raises unless signed right
        assert SECRET.encode() not in request.body
    data = by_type["integration.reauthorization_required"].json()["data"]
    assert (
        data["reconnect_url"] == f"https://hire.example.com/admin/integrations/integration/{integration.pk}/reconnect/"
    )
    assert data["integration"]["id"] == str(integration.pk)


def test_a_resolved_issue_arrives_signed_at_a_subscribed_webhook(organization, receiver):
    from standardwebhooks import Webhook as ReferenceVerifier
    from standardwebhooks.webhooks import WebhookVerificationError

    from webhooks import tasks
    from webhooks.services import webhook_create

    hook = webhook_create(
        organization=organization, name="ops", url=receiver.url, events=["integration.issue.resolved"]
    )
    integration = connected(organization)
    with responses.RequestsMock() as mock:
        refused(mock)
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
    opened = issue(integration, Kind.REAUTHORIZATION_REQUIRED)
    oauth_store_tokens(  # authorized again: resolved at once
        integration=integration,
        tokens=TokenSet(access_token="new", refresh_token="new-refresh", scope=GOOGLE_SCOPES, expires_in=3600),
        authorized=True,
    )
    tasks.deliver_due()
    (request,) = receiver.wait_for(1)  # the opening went to no one: not subscribed
    verified = ReferenceVerifier(hook.secret).verify(request.body, request.headers)  # raises unless signed right
    assert verified["type"] == "integration.issue.resolved"
    data = verified["data"]
    assert data["integration"] == {"id": str(integration.pk), "name": integration.name, "provider": "google_calendar"}
    resolved = ConnectionIssue.objects.get(pk=opened.pk)
    assert data["issue"]["id"] == str(opened.pk)
    assert (data["issue"]["kind"], data["issue"]["status"]) == ("reauthorization_required", "resolved")
    assert data["issue"]["resolved_at"] == resolved.resolved_at.isoformat()
    assert SECRET.encode() not in request.body
    with pytest.raises(WebhookVerificationError):  # the verifier does refuse what was not signed
        ReferenceVerifier(hook.secret).verify(request.body.replace(b"resolved", b"opened"), request.headers)
