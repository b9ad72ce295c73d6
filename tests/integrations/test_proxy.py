"""The REST proxy passes a call through to the provider with the integration's credential."""

from __future__ import annotations

import base64
from http import HTTPStatus

import pytest
import responses
from responses import matchers

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
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"items": [1]}
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
    assert response.status_code == HTTPStatus.CREATED and response.json() == {"id": "e1"}


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
    assert response.content == b"<ok/>" and response["Content-Type"] == "text/xml"


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
