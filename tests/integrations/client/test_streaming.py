"""`send(..., stream=True)`: a successful answer comes back unread; the rest is as without it."""

from __future__ import annotations

import pytest
import responses
from responses import matchers

from common.http import read_capped
from integrations.client import ProviderError, integration_client
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, token_body

from .conftest import TOKEN, api_key, oauth

pytestmark = pytest.mark.django_db

URL = "https://www.googleapis.com/calendar/v3/users/me/calendarList"


def test_a_streamed_answer_is_returned_unread_and_logged_with_its_content_length(organization, records, settings):
    settings.INTEGRATIONS_MAX_RESPONSE_BYTES = 1000  # the cap of reads the client makes itself
    body = b"a" * 5000
    with responses.RequestsMock() as mock:
        mock.get(URL, body=body, headers={"Content-Length": "5000"})
        response = integration_client(oauth(organization)).send("GET", "users/me/calendarList", stream=True)
        assert not response._content_consumed
        assert read_capped(response, 10_000) == body  # the caller's cap, not the client's
    assert [(record.status, record.bytes) for record in records] == [(200, 5000)]


def test_a_streamed_call_without_content_length_logs_zero_bytes(organization, records):
    with responses.RequestsMock() as mock:
        mock.get(URL, body=b"abc")
        response = integration_client(oauth(organization)).send("GET", "users/me/calendarList", stream=True)
        assert b"".join(response.iter_content(2)) == b"abc"
    assert [record.bytes for record in records] == [0]


def test_a_streamed_call_still_refreshes_once_on_401(organization, records):
    integration = oauth(organization)
    with responses.RequestsMock() as mock:
        first = mock.get(URL, status=401, json={"error": {"status": "UNAUTHENTICATED"}})
        token = mock.post(GOOGLE_TOKEN_URL, body=token_body(access="fresh-token"))
        second = mock.get(URL, body=b"ok", match=[matchers.header_matcher({"Authorization": "Bearer fresh-token"})])
        response = integration_client(integration).send("GET", "users/me/calendarList", stream=True)
        assert response.status_code == 200 and read_capped(response, 10) == b"ok"
    assert (first.call_count, token.call_count, second.call_count) == (1, 1, 1)
    assert [record.status for record in records] == [401, 200]
    assert TOKEN not in repr(records)


def test_a_streamed_failure_is_read_for_its_error_code(organization):
    with responses.RequestsMock() as mock:
        mock.post(URL, status=404, json={"error": {"code": 404, "status": "NOT_FOUND", "message": "gone"}})
        with pytest.raises(ProviderError) as caught:
            integration_client(oauth(organization)).send("POST", "users/me/calendarList", stream=True)
    assert caught.value.status == 404 and caught.value.code == "NOT_FOUND" and "gone" in caught.value.message


def test_a_streamed_failure_over_the_client_cap_is_too_large(organization, settings, records):
    settings.INTEGRATIONS_MAX_RESPONSE_BYTES = 1000
    settings.INTEGRATIONS_CLIENT_RETRIES = 0
    with responses.RequestsMock() as mock:
        mock.get("https://api.rippling.com/platform/api/me", status=400, body=b"e" * 5000)
        with pytest.raises(ProviderError) as caught:
            integration_client(api_key(organization)).send(
                "GET", "platform/api/me", stream=True, raise_for_status=False
            )
    assert caught.value.kind == "too_large"
    assert [record.error_kind for record in records] == ["too_large"]


def test_slack_answers_are_read_for_ok_false_even_when_streamed(organization):
    integration = oauth(organization, provider="slack")
    with responses.RequestsMock() as mock:
        mock.post("https://slack.com/api/chat.postMessage", json={"ok": False, "error": "channel_not_found"})
        response = integration_client(integration).send("POST", "chat.postMessage", stream=True, raise_for_status=False)
    assert response._content_consumed and response.json()["error"] == "channel_not_found"
