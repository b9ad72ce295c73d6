"""A 401 on a token is answered by exactly one forced refresh and one more send."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from responses import matchers

from integrations.client import ProviderError, ReauthorizationRequired, integration_client
from integrations.models import ConnectionIssue
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, token_body

from .conftest import KEY, TOKEN, api_key, oauth

pytestmark = pytest.mark.django_db

URL = "https://www.googleapis.com/calendar/v3/users/me/calendarList"


def bearer(token):
    return [matchers.header_matcher({"Authorization": f"Bearer {token}"})]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_401_refreshes_once_and_retries_once(organization, method):
    integration = oauth(organization)
    with responses.RequestsMock() as mock:
        first = mock.add(method, URL, status=401, json={"error": {"status": "UNAUTHENTICATED"}}, match=bearer(TOKEN))
        token = mock.post(GOOGLE_TOKEN_URL, body=token_body(access="fresh-token"))
        second = mock.add(method, URL, json={"items": []}, match=bearer("fresh-token"))
        assert integration_client(integration).request(method, "users/me/calendarList") == {"items": []}
    assert (first.call_count, token.call_count, second.call_count) == (1, 1, 1)
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "fresh-token"


def test_401_after_the_refresh_is_credentials_rejected_without_a_second_refresh(organization):
    integration = oauth(organization)
    with responses.RequestsMock() as mock:
        api = mock.get(URL, status=401, json={"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        token = mock.post(GOOGLE_TOKEN_URL, body=token_body(access="fresh-token"))
        with pytest.raises(ProviderError) as caught:
            integration_client(integration).get("users/me/calendarList")
    assert (api.call_count, token.call_count) == (2, 1)
    assert caught.value.status == 401 and caught.value.kind == "credentials_rejected"
    assert caught.value.code == "UNAUTHENTICATED"
    issue = ConnectionIssue.objects.get(integration=integration)
    assert (issue.kind, issue.status) == ("credentials_rejected", "open")


def test_token_expiring_soon_is_refreshed_before_the_call(organization):
    integration = oauth(organization, expires_in=timedelta(seconds=30))
    with responses.RequestsMock() as mock:
        token = mock.post(GOOGLE_TOKEN_URL, body=token_body(access="ahead-token"))
        mock.get(URL, json={"items": []}, match=bearer("ahead-token"))
        integration_client(integration).get("users/me/calendarList")
    assert token.call_count == 1


def test_invalid_grant_on_refresh_raises_reauthorization_required_and_opens_an_issue(organization):
    integration = oauth(organization)
    with responses.RequestsMock() as mock:
        mock.get(URL, status=401)
        mock.post(GOOGLE_TOKEN_URL, status=400, body=json.dumps({"error": "invalid_grant"}))
        with pytest.raises(ReauthorizationRequired):
            integration_client(integration).get("users/me/calendarList")
    assert ConnectionIssue.objects.filter(integration=integration, kind="credentials_rejected").exists()


def test_api_key_401_is_not_refreshed(organization):
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        api = mock.get("https://api.rippling.com/platform/api/me", status=401, match=bearer(KEY))
        with pytest.raises(ProviderError) as caught:
            integration_client(integration).get("platform/api/me")
    assert api.call_count == 1 and caught.value.status == 401


def test_slack_invalid_auth_in_a_200_counts_as_a_401(organization, settings):
    integration = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        mock.post(
            "https://slack.com/api/oauth.v2.access", json={"ok": True, **json.loads(token_body(access="xoxb-new"))}
        )
        mock.get("https://slack.com/api/auth.test", json={"ok": False, "error": "invalid_auth"}, match=bearer(TOKEN))
        mock.get("https://slack.com/api/auth.test", json={"ok": True}, match=bearer("xoxb-new"))
        assert integration_client(integration).get("auth.test") == {"ok": True}


def test_a_kept_client_renews_a_token_that_nears_expiry(organization):
    from django.utils import timezone

    integration = oauth(organization)
    client = integration_client(integration)
    with responses.RequestsMock() as mock:
        mock.get(URL, json={}, match=bearer(TOKEN))
        client.get("users/me/calendarList")
        soon = timezone.now() + timedelta(seconds=10)  # time passed
        type(integration).objects.filter(pk=integration.pk).update(token_expires_at=soon)
        integration.token_expires_at = soon
        token = mock.post(GOOGLE_TOKEN_URL, body=token_body(access="later-token"))
        mock.get(URL, json={}, match=bearer("later-token"))
        client.get("users/me/calendarList")
    assert token.call_count == 1
