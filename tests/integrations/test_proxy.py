"""The REST proxy passes a call through to the provider with the integration's credential."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from http import HTTPStatus

import pytest
import responses
from responses import matchers

from common.http import ResponseTooLarge
from tests.api_errors import error_detail
from tests.integrations.client.conftest import KEY, TOKEN, api_key, oauth

pytestmark = pytest.mark.django_db

GOOGLE = "https://www.googleapis.com/calendar/v3"
BAMBOO = "https://api.bamboohr.com/api/gateway.php/acme/v1"


@pytest.fixture(autouse=True)
def google_app(settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"


def proxy(integration, path=""):
    return f"/api/integrations/{integration.pk}/proxy/{path}"


@pytest.fixture
def records():
    """Every CallRecord the client reports through the after-call hook."""
    from integrations.client import hooks

    seen: list = []
    hooks.register_after_call(seen.append)
    yield seen
    hooks.unregister(seen.append)


def content(response) -> bytes:
    """The answer's body: a provider's 2xx is streamed, our own errors and its 4xx are not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_get_passes_query_status_body_and_safe_headers(api_client, organization):
    integration = oauth(organization)
    with responses.RequestsMock() as mock:
        mock.get(
            GOOGLE + "/calendars/primary/events",
            json={"items": [1]},
            headers={"ETag": '"v1"', "Set-Cookie": "provider=1", "Link": "<https://x>", "X-Internal": "1"},
            match=[
                matchers.query_param_matcher({"maxResults": "5", "q": "a b"}),
                matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"}),
            ],
        )
        response = api_client.get(proxy(integration, "calendars/primary/events?maxResults=5&q=a+b"))
    assert response.status_code == HTTPStatus.OK and response.streaming
    assert json.loads(content(response)) == {"items": [1]}
    assert response["Content-Type"] == "application/json" and response["ETag"] == '"v1"'
    for dropped in ("Set-Cookie", "Link", "X-Internal"):
        assert dropped not in response
    assert not response.cookies


def test_post_body_and_content_type_pass_through(api_client, organization):
    integration = oauth(organization)
    with responses.RequestsMock() as mock:
        mock.post(
            GOOGLE + "/calendars/primary/events",
            status=201,
            json={"id": "e1"},
            match=[
                matchers.header_matcher({"Content-Type": "application/json; charset=utf-8"}),
                matchers.body_matcher('{"summary": "Interview"}'),
            ],
        )
        response = api_client.generic(
            "POST",
            proxy(integration, "calendars/primary/events"),
            '{"summary": "Interview"}',
            content_type="application/json; charset=utf-8",
        )
    assert response.status_code == HTTPStatus.CREATED and json.loads(content(response)) == {"id": "e1"}


def test_non_json_bodies_pass_through(api_client, organization):
    integration = api_key(organization, "bamboohr", config={"company_domain": "acme"})
    auth = base64.b64encode(f"{KEY}:x".encode()).decode()
    with responses.RequestsMock() as mock:
        mock.put(
            BAMBOO + "/employees/4",
            body="<ok/>",
            content_type="text/xml",
            match=[matchers.header_matcher({"Authorization": f"Basic {auth}", "Content-Type": "text/xml"})],
        )
        response = api_client.generic("PUT", proxy(integration, "employees/4"), "<employee/>", content_type="text/xml")
    assert response.status_code == HTTPStatus.OK
    assert content(response) == b"<ok/>" and response["Content-Type"] == "text/xml"


def test_provider_4xx_passes_through(api_client, organization):
    integration = oauth(organization)
    with responses.RequestsMock() as mock:
        mock.delete(GOOGLE + "/calendars/primary/events/x", status=404, json={"error": {"code": 404}})
        response = api_client.delete(proxy(integration, "calendars/primary/events/x"))
    assert response.status_code == HTTPStatus.NOT_FOUND and response.json() == {"error": {"code": 404}}


def test_provider_401_after_refresh_is_a_502_naming_the_credentials(api_client, organization):
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.get("https://api.rippling.com/platform/api/me", status=401)
        response = api_client.get(proxy(integration, "platform/api/me"))
    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert response.json()["error_kind"] == "credentials_rejected"


def test_rate_limited_is_429_with_retry_after(api_client, organization):
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.post("https://api.rippling.com/platform/api/x", status=429, headers={"Retry-After": "12"})
        response = api_client.post(proxy(integration, "platform/api/x"), {}, format="json")
    # a provider 429 passes through as it came, with its Retry-After
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS and response["Retry-After"] == "12"


def test_limiter_refusal_is_a_json_429(api_client, organization):
    from integrations.client import RateLimited, hooks

    def refuse(integration, method, path):
        raise RateLimited("Rate limit of this integration reached.", retry_after=2.2, status=None)

    hooks.register_before_call(refuse)
    try:
        response = api_client.get(proxy(api_key(organization, "rippling"), "platform/api/me"))
    finally:
        hooks.unregister(refuse)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response.json()["retry_after"] == 2.2 and response["Retry-After"] == "2"


def test_unreachable_provider_is_a_json_502(api_client, organization, settings):
    import requests

    settings.INTEGRATIONS_CLIENT_RETRIES = 0
    with responses.RequestsMock() as mock:
        mock.get("https://api.rippling.com/platform/api/me", body=requests.ConnectionError("down"))
        response = api_client.get(proxy(api_key(organization, "rippling"), "platform/api/me"))
    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert response.json()["error_kind"] == "connection"


def test_integration_without_an_api_is_a_400(api_client, organization):
    integration = api_key(organization, "custom", config={"category": "hris"})
    response = api_client.get(proxy(integration, "x"))
    assert response.status_code == HTTPStatus.BAD_REQUEST and "api_base_url" in response.json()["detail"]


def test_reauthorization_required_is_a_409(api_client, organization):
    integration = oauth(organization, needs_reauthorization=True, expires_in=None, credentials={"refresh_token": "r"})
    response = api_client.get(proxy(integration, "users/me/calendarList"))
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json()["error_kind"] == "reauthorization_required"


def test_queries_are_bounded(api_client, organization, django_assert_max_num_queries):
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.get("https://api.rippling.com/platform/api/me", json={})
        # key lookup + last_used, the integration, one issue check
        with django_assert_max_num_queries(5):
            assert api_client.get(proxy(integration, "platform/api/me")).status_code == HTTPStatus.OK


def test_provider_5xx_is_a_json_502_with_its_status(api_client, organization, settings):
    settings.INTEGRATIONS_CLIENT_RETRIES = 0
    with responses.RequestsMock() as mock:
        mock.get("https://api.rippling.com/platform/api/me", status=503, body="<html>down</html>")
        response = api_client.get(proxy(api_key(organization, "rippling"), "platform/api/me"))
    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert response.json()["error_kind"] == "provider_unavailable" and response.json()["provider_status"] == 503


# --- streamed answers -------------------------------------------------------------------


def test_a_large_body_streams_through_intact_with_its_content_length(api_client, organization, records):
    body = bytes(range(256)) * 4096  # 1 MiB, four times INTEGRATIONS_MAX_RESPONSE_BYTES
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.get(
            "https://api.rippling.com/platform/api/export",
            body=body,
            content_type="application/octet-stream",
            headers={"Content-Length": str(len(body)), "Set-Cookie": "a=b", "ETag": '"e"'},
        )
        response = api_client.get(proxy(integration, "platform/api/export"))
        assert response.status_code == HTTPStatus.OK and response.streaming
        chunks = list(response.streaming_content)
    assert b"".join(chunks) == body and len(chunks) > 1  # in chunks, not one buffer
    assert response["Content-Length"] == str(len(body)) and response["ETag"] == '"e"'
    assert "Set-Cookie" not in response and not response.cookies
    assert [record.bytes for record in records] == [len(body)]  # the Content-Length, logged on arrival


def test_a_content_length_over_the_cap_is_a_json_502_before_anything_is_sent(api_client, organization, settings):
    settings.INTEGRATIONS_PROXY_MAX_RESPONSE_BYTES = 1000
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.get(
            "https://api.rippling.com/platform/api/export",
            body=b"x" * 1001,
            headers={"Content-Length": "1001"},
        )
        response = api_client.get(proxy(integration, "platform/api/export"))
    assert response.status_code == HTTPStatus.BAD_GATEWAY and not response.streaming
    assert "larger than the proxy's limit" in error_detail(response)
    assert response.json()["error_kind"] == "too_large"


def test_a_gzip_bomb_is_cut_at_the_cap_counted_decoded(api_client, organization, settings, caplog):
    settings.INTEGRATIONS_PROXY_MAX_RESPONSE_BYTES = 100_000
    bomb = gzip.compress(b"\0" * 20_000_000)  # ~20 KB on the wire, 20 MB decoded
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.get(
            "https://api.rippling.com/platform/api/export",
            body=bomb,
            headers={"Content-Encoding": "gzip", "Content-Length": str(len(bomb))},
        )
        response = api_client.get(proxy(integration, "platform/api/export"))
        assert response.status_code == HTTPStatus.OK and response.streaming
        # decoded: neither its encoding nor its (encoded) length are passed on
        assert "Content-Encoding" not in response and "Content-Length" not in response
        received = b""
        with caplog.at_level(logging.WARNING), pytest.raises(ResponseTooLarge):
            for chunk in response.streaming_content:
                received += chunk
    assert received == b"\0" * 100_000  # exactly the cap, then the stream fails (connection dropped)
    assert "cut at 100000 bytes" in caplog.text


def test_a_body_without_length_under_the_cap_streams_whole(api_client, organization, settings):
    settings.INTEGRATIONS_PROXY_MAX_RESPONSE_BYTES = 100_000
    body = b"y" * 100_000
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.get(
            "https://api.rippling.com/platform/api/export",
            body=gzip.compress(body),
            headers={"Content-Encoding": "gzip"},
        )
        response = api_client.get(proxy(integration, "platform/api/export"))
        assert content(response) == body and "Content-Length" not in response


def test_the_upstream_answer_is_closed_when_the_caller_goes_away(api_client, organization, monkeypatch):
    import requests

    closed = []
    close = requests.Response.close
    monkeypatch.setattr(requests.Response, "close", lambda self: (closed.append(self.url), close(self)))
    integration = api_key(organization, "rippling")
    with responses.RequestsMock() as mock:
        mock.get("https://api.rippling.com/platform/api/export", body=b"z" * 200_000)
        response = api_client.get(proxy(integration, "platform/api/export"))
        next(iter(response.streaming_content))
        assert not closed
        response.close()  # what the server does when the caller disconnects
    assert closed == ["https://api.rippling.com/platform/api/export"]
