"""OAuth state attacks on the browser callback (GET /api/integrations/oauth/callback/), which
has no API key: the state alone authenticates it. The API callback's attacks are in
tests/integrations/test_oauth_flow.py; these add the browser route and a failed exchange."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import Integration, OAuthState

from .tenants import make_tenant

pytestmark = pytest.mark.django_db
CALLBACK = "/api/integrations/oauth/callback/"
START = "/api/integrations/oauth/start/"


@pytest.fixture
def acme():
    return make_tenant("acme")


def start(tenant, browser_client=None) -> str:
    """Start a flow with the API key; with `browser_client`, open its start link there (binding it)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
    state = client.get(f"/api/integrations/{tenant.oauth_integration.pk}/oauth/authorize/").json()["state"]
    if browser_client is not None:
        assert browser_client.post(START, {"state": state}).status_code == HTTPStatus.FOUND
    return state


def fields(integration):
    integration = Integration.objects.get(pk=integration.pk)
    return integration.credentials, integration.status, integration.token_expires_at


def browser(state, code="the-code", client=None):
    return (client or Client()).get(CALLBACK, {"code": code, "state": state})


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
    me = Client()
    state = start(acme, me)
    token_url = acme.oauth_integration.config["token_url"]
    with responses.RequestsMock() as outbound:
        outbound.add(responses.POST, token_url, json={"access_token": "first", "expires_in": 60})
        assert browser(state, client=me).status_code == HTTPStatus.OK
        after_first = fields(acme.oauth_integration)
        replay = browser(state, code="another-code", client=me)
        assert len(outbound.calls) == 1
    assert replay.status_code == HTTPStatus.BAD_REQUEST
    assert b"already used" in replay.content
    assert fields(acme.oauth_integration) == after_first


def test_a_state_used_up_by_a_failed_exchange_cannot_be_retried(acme):
    """The state is consumed before the exchange: a provider failure does not make it reusable."""
    me = Client()
    state = start(acme, me)
    token_url = acme.oauth_integration.config["token_url"]
    before = fields(acme.oauth_integration)
    with responses.RequestsMock() as outbound:
        outbound.add(responses.POST, token_url, status=503, body="down")
        assert browser(state, client=me).status_code == HTTPStatus.BAD_GATEWAY
        assert browser(state, client=me).status_code == HTTPStatus.BAD_REQUEST
        assert len(outbound.calls) == 1
    assert fields(acme.oauth_integration) == before


def test_a_state_cannot_be_moved_to_another_organizations_integration_via_the_browser(acme):
    """The browser route takes no integration id: the state picks it, and only its own."""
    globex = make_tenant("globex")
    me = Client()
    state = start(acme, me)
    token_url = acme.oauth_integration.config["token_url"]
    globex_before = fields(globex.oauth_integration)
    with responses.RequestsMock() as outbound:
        outbound.add(responses.POST, token_url, json={"access_token": "for-acme", "expires_in": 60})
        assert browser(state, client=me).status_code == HTTPStatus.OK
    assert fields(acme.oauth_integration)[0]["access_token"] == "for-acme"
    assert fields(globex.oauth_integration) == globex_before


# --- the flow is bound to the browser that started it (RFC 6749 §10.12) ---------------------


def test_a_state_used_from_another_browser_is_refused_and_nothing_is_stored(acme):
    """A victim opening another organization's authorization URL attaches nothing to it."""
    initiator, victim = Client(), Client()
    state = start(acme, initiator)
    token_url = acme.oauth_integration.config["token_url"]
    before = fields(acme.oauth_integration)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        outbound.add(responses.POST, token_url, json={"access_token": "victims", "expires_in": 60})
        refused = browser(state, client=victim)
        assert len(outbound.calls) == 0
        assert refused.status_code == HTTPStatus.FORBIDDEN
        assert refused["Content-Type"].startswith("text/html")
        assert b"another browser" in refused.content
        assert fields(acme.oauth_integration) == before
        assert OAuthState.objects.get().used_at is None
        assert browser(state, client=initiator).status_code == HTTPStatus.OK  # the initiator still can
    assert fields(acme.oauth_integration)[0]["access_token"] == "victims"


def test_an_unbound_api_state_is_refused_on_the_browser_route(acme):
    state = start(acme)  # the raw provider URL was handed on, nobody opened the start link
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        assert browser(state).status_code == HTTPStatus.FORBIDDEN
        assert len(outbound.calls) == 0


def test_the_start_link_is_a_page_whose_button_binds_once(acme):
    state = start(acme)
    img = Client()
    page = img.get(START, {"state": state})  # what an <img> or a link preview does
    assert page.status_code == HTTPStatus.OK and b'method="post"' in page.content
    assert OAuthState.objects.get().binding_hash == ""
    assert not [name for name in page.cookies if name.startswith("oauth_binding_")]
    first, second = Client(), Client()
    bound = first.post(START, {"state": state})
    assert bound.status_code == HTTPStatus.FOUND
    assert bound["Location"].startswith(acme.oauth_integration.config["authorization_url"])
    cookie = next(iter(bound.cookies.values()))
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/api/integrations/oauth/callback"
    assert second.post(START, {"state": state}).status_code == HTTPStatus.BAD_REQUEST  # bound already


def test_the_start_button_needs_the_csrf_token(acme):
    state = start(acme)
    forged = Client(enforce_csrf_checks=True).post(START, {"state": state})  # another site's auto-submitted form
    assert forged.status_code == HTTPStatus.FORBIDDEN
    assert OAuthState.objects.get().binding_hash == ""


def test_admin_authorize_is_a_post_with_csrf_and_binds_the_admins_browser(acme, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    url = f"/admin/integrations/integration/{acme.oauth_integration.pk}/authorize/"
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(admin)
    assert staff.get(url).status_code == HTTPStatus.METHOD_NOT_ALLOWED  # an <img src=...> starts nothing
    assert staff.post(url).status_code == HTTPStatus.FORBIDDEN  # no CSRF token
    assert not OAuthState.objects.exists()
    change = staff.get(f"/admin/integrations/integration/{acme.oauth_integration.pk}/change/")
    assert f'formaction="{url}" formmethod="post"'.encode() in change.content
    token = change.cookies["csrftoken"].value if "csrftoken" in change.cookies else staff.cookies["csrftoken"].value
    response = staff.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == HTTPStatus.FOUND
    state = response["Location"].split("state=")[1].split("&")[0]
    token_url = acme.oauth_integration.config["token_url"]
    with responses.RequestsMock() as outbound:
        outbound.add(responses.POST, token_url, json={"access_token": "admins", "expires_in": 60})
        assert browser(state, client=Client()).status_code == HTTPStatus.FORBIDDEN
        assert browser(state, client=staff).status_code == HTTPStatus.OK
    assert fields(acme.oauth_integration)[0]["access_token"] == "admins"
