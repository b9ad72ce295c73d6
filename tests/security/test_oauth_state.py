"""OAuth state attacks on the browser callback (GET /api/integrations/oauth/callback/), which
has no API key: the state alone authenticates it. The API callback's attacks are in
tests/integrations/test_oauth_flow.py; these add the browser route and a failed exchange."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import Integration, OAuthState

from .tenants import make_tenant

pytestmark = pytest.mark.django_db
CALLBACK = "/api/integrations/oauth/callback/"


@pytest.fixture
def acme():
    return make_tenant("acme")


def start(tenant) -> str:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
    return client.get(f"/api/integrations/{tenant.oauth_integration.pk}/oauth/authorize/").json()["state"]


def fields(integration):
    integration = Integration.objects.get(pk=integration.pk)
    return integration.credentials, integration.status, integration.token_expires_at


def browser(state, code="the-code"):
    return APIClient().get(CALLBACK, {"code": code, "state": state})


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),
        lambda s: s + "x",
        lambda s: s[:20],
        lambda s: s.upper(),
        lambda s: " " * 5000,
        lambda s: "x" * 5000,
    ],
    ids=["last-char", "appended", "truncated", "case", "blank", "too-long"],
)
def test_tampered_state_is_a_400_page_and_nothing_happens(acme, mangle):
    state = start(acme)
    before = fields(acme.oauth_integration)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        response = browser(mangle(state))
        assert len(outbound.calls) == 0
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"].startswith("text/html")
    assert b"the-code" not in response.content
    assert fields(acme.oauth_integration) == before
    assert OAuthState.objects.get().used_at is None  # the real state still works


def test_expired_state_on_the_browser_route(acme):
    state = start(acme)
    OAuthState.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    before = fields(acme.oauth_integration)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        response = browser(state)
        assert len(outbound.calls) == 0
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert b"expired" in response.content
    assert fields(acme.oauth_integration) == before


def test_replayed_state_on_the_browser_route_exchanges_once(acme):
    state = start(acme)
    token_url = acme.oauth_integration.config["token_url"]
    with responses.RequestsMock() as outbound:
        outbound.add(responses.POST, token_url, json={"access_token": "first", "expires_in": 60})
        assert browser(state).status_code == HTTPStatus.OK
        after_first = fields(acme.oauth_integration)
        replay = browser(state, code="another-code")
        assert len(outbound.calls) == 1
    assert replay.status_code == HTTPStatus.BAD_REQUEST
    assert b"already used" in replay.content
    assert fields(acme.oauth_integration) == after_first


def test_a_state_used_up_by_a_failed_exchange_cannot_be_retried(acme):
    """The state is consumed before the exchange: a provider failure does not make it reusable."""
    state = start(acme)
    token_url = acme.oauth_integration.config["token_url"]
    before = fields(acme.oauth_integration)
    with responses.RequestsMock() as outbound:
        outbound.add(responses.POST, token_url, status=503, body="down")
        assert browser(state).status_code == HTTPStatus.BAD_GATEWAY
        assert browser(state).status_code == HTTPStatus.BAD_REQUEST
        assert len(outbound.calls) == 1
    assert fields(acme.oauth_integration) == before


def test_a_state_cannot_be_moved_to_another_organizations_integration_via_the_browser(acme):
    """The browser route takes no integration id: the state picks it, and only its own."""
    globex = make_tenant("globex")
    state = start(acme)
    token_url = acme.oauth_integration.config["token_url"]
    globex_before = fields(globex.oauth_integration)
    with responses.RequestsMock() as outbound:
        outbound.add(responses.POST, token_url, json={"access_token": "for-acme", "expires_in": 60})
        assert browser(state).status_code == HTTPStatus.OK
    assert fields(acme.oauth_integration)[0]["access_token"] == "for-acme"
    assert fields(globex.oauth_integration) == globex_before
