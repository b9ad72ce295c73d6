"""Typed errors, redacted messages, and retries only where a repeat is harmless."""

from __future__ import annotations

import pytest
import requests
import responses

from integrations.client import ProviderError, RateLimited, integration_client

from .conftest import TOKEN, oauth

pytestmark = pytest.mark.django_db

URL = "https://graph.microsoft.com/v1.0/me/events"


def client(organization):
    return integration_client(oauth(organization, "microsoft_outlook"))


def test_slack_ok_false_is_a_provider_error_with_its_code(organization):
    with responses.RequestsMock() as mock:
        mock.post("https://slack.com/api/chat.postMessage", json={"ok": False, "error": "channel_not_found"})
        with pytest.raises(ProviderError) as caught:
            integration_client(oauth(organization, "slack")).post("chat.postMessage", json={"channel": "C1"})
    assert (caught.value.status, caught.value.code) == (200, "channel_not_found")
    assert caught.value.status_code == 502  # what the API answers if platform code lets it through


def test_graph_error_code_and_message_are_redacted(organization):
    body = {"error": {"code": "ErrorItemNotFound", "message": f"not found for token {TOKEN}"}}
    with responses.RequestsMock() as mock:
        mock.get(URL + "/x", status=404, json=body)
        with pytest.raises(ProviderError) as caught:
            client(organization).get("me/events/x")
    assert caught.value.status == 404 and caught.value.code == "ErrorItemNotFound"
    assert TOKEN not in str(caught.value) and "not found for token [redacted]" in caught.value.message


def test_429_raises_rate_limited_with_retry_after_for_post(organization, sleeps):
    with responses.RequestsMock() as mock:
        post = mock.post(URL, status=429, headers={"Retry-After": "7"})
        with pytest.raises(RateLimited) as caught:
            client(organization).post("me/events", json={})
    assert caught.value.retry_after == 7 and caught.value.status_code == 429
    assert post.call_count == 1 and sleeps == []  # POST is never retried


def test_get_retries_429_after_retry_after_then_succeeds(organization, sleeps):
    with responses.RequestsMock() as mock:
        mock.get(URL, status=429, headers={"Retry-After": "2"})
        mock.get(URL, status=503)
        mock.get(URL, json={"value": []})
        assert client(organization).get("me/events") == {"value": []}
    assert sleeps[0] == 2 and len(sleeps) == 2


def test_retries_are_bounded(organization, sleeps, settings):
    settings.INTEGRATIONS_CLIENT_RETRIES = 2
    with responses.RequestsMock() as mock:
        get = mock.get(URL, status=502)
        with pytest.raises(ProviderError) as caught:
            client(organization).get("me/events")
    assert get.call_count == 3 and caught.value.kind == "provider_unavailable"


def test_retry_after_beyond_the_cap_is_not_waited(organization, sleeps, settings):
    settings.INTEGRATIONS_CLIENT_MAX_RETRY_WAIT_SECONDS = 5
    with responses.RequestsMock() as mock:
        get = mock.get(URL, status=429, headers={"Retry-After": "120"})
        with pytest.raises(RateLimited) as caught:
            client(organization).get("me/events")
    assert get.call_count == 1 and sleeps == [] and caught.value.retry_after == 120


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_idempotent_writes_are_retried(organization, sleeps, method):
    with responses.RequestsMock() as mock:
        first = mock.add(method, URL + "/1", status=503)
        mock.add(method, URL + "/1", status=204)
        client(organization).request(method, "me/events/1")
    assert first.call_count == 1 and len(sleeps) == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_methods_are_not_retried(organization, sleeps, method):
    with responses.RequestsMock() as mock:
        call = mock.add(method, URL, status=503)
        with pytest.raises(ProviderError):
            client(organization).request(method, "me/events", json={})
    assert call.call_count == 1 and sleeps == []


def test_connection_errors_are_retried_for_get_only(organization, sleeps):
    with responses.RequestsMock() as mock:
        mock.get(URL, body=requests.ConnectionError("reset"))
        mock.get(URL, json={"value": [1]})
        assert client(organization).get("me/events") == {"value": [1]}
        post = mock.post(URL, body=requests.ConnectionError("reset"))
        with pytest.raises(ProviderError) as caught:
            client(organization).post("me/events", json={})
    assert post.call_count == 1 and caught.value.kind == "connection" and caught.value.status is None


def test_read_timeout_is_not_retried(organization, sleeps):
    with responses.RequestsMock() as mock:
        get = mock.get(URL, body=requests.ReadTimeout("slow"))
        with pytest.raises(ProviderError) as caught:
            client(organization).get("me/events")
    assert get.call_count == 1 and caught.value.kind == "timeout"


def test_answer_over_the_size_cap_is_a_provider_error(organization, settings):
    settings.INTEGRATIONS_MAX_RESPONSE_BYTES = 1000
    with responses.RequestsMock() as mock:
        mock.get(URL, body="x" * 5000)
        with pytest.raises(ProviderError) as caught:
            client(organization).get("me/events")
    assert caught.value.kind == "too_large"


def test_ratelimit_reset_header_is_read(organization):
    with responses.RequestsMock() as mock:
        mock.post(URL, status=429, headers={"RateLimit-Reset": "30"})
        with pytest.raises(RateLimited) as caught:
            client(organization).post("me/events", json={})
    assert caught.value.retry_after == 30
