"""integrations/oauth/client.py and session.py: requests-oauthlib's OAuth2Session, sent through
the hardened session, with our client authentication and error mapping."""

import logging
import socket
import threading
import time
from http import HTTPStatus

import pytest
import responses

from integrations.models import Integration
from integrations.oauth.client import OAuthUpstreamError, resolve_client
from integrations.oauth.session import USER_AGENT
from integrations.services import integration_create
from tests.integrations.oauth_helpers import CUSTOM_CONFIG, form, oauth_integration, query, token_body

pytestmark = pytest.mark.django_db


def _authorized(integration: Integration) -> Integration:
    integration.credentials = {**integration.credentials, "access_token": "old-access", "refresh_token": "old-r"}
    integration.status = Integration.Status.ACTIVE
    integration.save()
    return integration


def _custom(organization, *, credentials=None, **config) -> Integration:
    return integration_create(
        organization=organization,
        name="idp",
        provider="custom",
        auth_type="oauth2",
        config={**CUSTOM_CONFIG, **config},
        credentials=credentials or {},
    )


def test_token_requests_go_out_through_the_hardened_session(organization):
    """Our session's User-Agent, not requests-oauthlib's default one: the request used our adapters."""
    client = resolve_client(_custom(organization, credentials={"client_secret": "s"}))
    with responses.RequestsMock() as mock:
        mock.post(CUSTOM_CONFIG["token_url"], body=token_body(), content_type="application/json")
        mock.post(CUSTOM_CONFIG["token_url"], body=token_body(), content_type="application/json")
        client.exchange_code(code="c", code_verifier="v" * 43)
        client.refresh(refresh_token="r")
        agents = [call.request.headers["User-Agent"] for call in mock.calls]
    assert agents == [USER_AGENT, USER_AGENT]


def test_public_client_with_basic_method_sends_its_id_in_the_body(organization):
    """No secret: no Basic header (requests-oauthlib would send one with an empty password)."""
    custom = _authorized(_custom(organization, token_auth_method="client_secret_basic"))
    with responses.RequestsMock() as mock:
        mock.post(CUSTOM_CONFIG["token_url"], body=token_body(), content_type="application/json")
        resolve_client(custom).refresh(refresh_token="old-r")
        request = mock.calls[0].request
    assert "Authorization" not in request.headers
    assert form(request) == {"grant_type": "refresh_token", "refresh_token": "old-r", "client_id": "custom-client"}


def test_authorization_url_keeps_the_catalogue_query(settings, organization):
    settings.BAMBOOHR_CLIENT_ID = "bamboo-client"
    bamboo = oauth_integration(organization, "bamboohr", config={"company_domain": "acmeco"})
    request = resolve_client(bamboo).authorization_request(state="s" * 43)
    assert request.url.startswith("https://acmeco.bamboohr.com/authorize.php?")
    params = query(request.url)
    assert params["request"] == "authorize"
    assert params["client_id"] == "bamboo-client"
    assert params["state"] == "s" * 43
    assert params["scope"] == "offline_access"
    assert "code_challenge" not in params and request.code_verifier == ""


def test_a_changed_scope_in_the_answer_is_stored_not_refused(organization):
    """oauthlib raises on a granted scope that differs from the requested one; we take it."""
    custom = _authorized(_custom(organization, credentials={"client_secret": "s"}))
    with responses.RequestsMock() as mock:
        mock.post(CUSTOM_CONFIG["token_url"], body=token_body(scope="read"), content_type="application/json")
        tokens = resolve_client(custom).refresh(refresh_token="old-r")
    assert tokens.scope == "read"


def test_requests_oauthlib_debug_records_are_dropped(organization, caplog):
    caplog.set_level(logging.DEBUG)
    custom = _authorized(_custom(organization, credentials={"client_secret": "client-SECRET-x"}))
    with responses.RequestsMock() as mock:
        mock.post(CUSTOM_CONFIG["token_url"], body=token_body("ACCESS-x", "REFRESH-x"), content_type="application/json")
        resolve_client(custom).refresh(refresh_token="old-REFRESH-x")
    assert not [record for record in caplog.records if record.name.startswith("requests_oauthlib")]
    for secret in ["client-SECRET-x", "ACCESS-x", "REFRESH-x", "old-REFRESH-x"]:
        assert secret not in caplog.text


@pytest.fixture
def trickling_endpoint():
    """An HTTP server that sends its headers, then one body byte every 0.2 s for 10 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n")
                try:
                    for _ in range(50):
                        if stop.wait(0.2):
                            break
                        conn.sendall(b" ")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/token"
    stop.set()
    thread.join(timeout=2)
    listener.close()


def test_a_trickling_token_endpoint_is_cut_off_by_the_deadline(settings, organization, trickling_endpoint):
    """Each byte comes within the read timeout; the whole-request deadline still ends it."""
    settings.ALLOW_PRIVATE_URLS = True
    settings.INTEGRATIONS_HTTP_TIMEOUT = 1
    custom = _authorized(_custom(organization, credentials={"client_secret": "s"}, token_url=trickling_endpoint))
    started = time.monotonic()
    with pytest.raises(OAuthUpstreamError) as raised:
        resolve_client(custom).refresh(refresh_token="old-r")
    assert time.monotonic() - started < 3
    assert raised.value.status_code == HTTPStatus.BAD_GATEWAY
    assert "timed out" in raised.value.message
