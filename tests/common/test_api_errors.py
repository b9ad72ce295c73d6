"""Under /api/ every answer is JSON, whatever DEBUG is (common/api/middleware.py, handlers.py).

`make run` writes a `.env` with DEBUG=true, where Django answers its HTML debug pages: the 404
lists every URL pattern, the 500 shows the traceback. Most tests here run with DEBUG on and
off; one shows the debug page is really there outside /api/, so they would see it.
"""

import logging
from http import HTTPStatus

import pytest
from django.test import Client
from rest_framework.test import APIClient

from integrations.models import Integration
from webhooks.models import Event

pytestmark = pytest.mark.django_db

START = "/api/integrations/oauth/start/"
LIMIT = 1000


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json", response.content[:300]
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    text = response.content.decode()
    for leak in ("Traceback", "urlpatterns", "URLconf", "<html", "DJANGO_SETTINGS_MODULE"):
        assert leak not in text
    return body


def test_outside_the_api_debug_pages_are_really_on(client, settings):
    """The control: what the tests below must never see under /api/."""
    settings.DEBUG = True
    page = client.get("/no-such-page/")
    assert page.status_code == HTTPStatus.NOT_FOUND
    assert page["Content-Type"].startswith("text/html")
    assert b"URLconf" in page.content


# --- large bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("post", "/api/events/", "application/json"),
        ("post", "/api/integrations/", "application/json"),
        ("patch", "/api/integrations/00000000-0000-0000-0000-000000000000/", "application/json"),
        ("post", "/api/api-keys/", "text/plain"),
        ("post", START, "application/x-www-form-urlencoded"),  # a browser page, not DRF
        ("post", "/api/no-such-route/", "application/json"),
    ],
)
def test_a_body_over_the_upload_limit_is_a_json_413_naming_the_limit(
    api_client, settings, debug, method, path, content_type
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT
    body = '{"event": "application.created", "payload": {"note": "%s"}}' % ("x" * LIMIT)
    response = getattr(api_client, method)(path, body, content_type=content_type)
    error = assert_json_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    assert f"{LIMIT} bytes" in error["detail"]
    assert error["max_bytes"] == LIMIT
    assert not Event.objects.exists()
    assert not Integration.objects.exists()


def test_a_body_within_the_limit_is_served(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT
    prefix, suffix = '{"event": "application.created", "payload": {"note": "', '"}}'
    body = prefix + "x" * (LIMIT - len(prefix) - len(suffix)) + suffix
    assert len(body) == LIMIT
    response = api_client.post("/api/events/", body, content_type="application/json")
    assert response.status_code == HTTPStatus.ACCEPTED, response.content


def test_the_default_limit_answers_413_too(api_client, settings):
    body = '{"name": "%s"}' % ("x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    error = assert_json_error(
        api_client.post("/api/api-keys/", body, content_type="application/json"), HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    )
    assert error["max_bytes"] == 2.5 * 1024 * 1024


# --- 404, 405, 500, CSRF, bad host ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/nope", "/api/integrations/not-a-uuid/", "/api/integrations/webhooks/x;y/stats/", "/api/"],
)
def test_unrouted_api_paths_are_json_404s_without_the_url_patterns(api_client, debug, path):
    assert_json_error(api_client.get(path), HTTPStatus.NOT_FOUND)
    assert_json_error(api_client.post(path, {}, format="json"), HTTPStatus.NOT_FOUND)


def test_another_organizations_object_is_a_json_404(api_client, debug):
    assert_json_error(api_client.get("/api/integrations/00000000-0000-0000-0000-000000000000/"), HTTPStatus.NOT_FOUND)


def test_a_method_not_allowed_is_a_json_405_with_allow(api_client, debug):
    response = api_client.put("/api/organization/", {}, format="json")
    assert_json_error(response, HTTPStatus.METHOD_NOT_ALLOWED)
    assert "GET" in response["Allow"]


def test_an_exception_in_a_view_is_a_json_500_logged_with_its_traceback(api_client, debug, monkeypatch, caplog):
    def broken():
        raise RuntimeError("internal detail that must not reach the client")

    monkeypatch.setattr("webhooks.api.views.event_definitions", broken)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_client.raw_key}")
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/api/integrations/webhooks/events/")
    body = assert_json_error(response, HTTPStatus.INTERNAL_SERVER_ERROR)
    assert body == {
        "type": "server_error",
        "title": "Internal server error",
        "detail": "Internal server error.",
        "errors": {},
    }
    assert b"internal detail" not in response.content
    [record] = [r for r in caplog.records if r.name == "django.request" and r.levelno == logging.ERROR]
    assert record.exc_info and "internal detail" in str(record.exc_info[1])


def test_the_test_client_still_raises_a_views_exception(api_client, monkeypatch):
    """The 500 is signalled as Django does (got_request_exception): error reporters and the
    test client see the exception, not only the JSON answer."""

    def broken():
        raise RuntimeError("seen by the test client")

    monkeypatch.setattr("webhooks.api.views.event_definitions", broken)
    with pytest.raises(RuntimeError, match="seen by the test client"):
        api_client.get("/api/integrations/webhooks/events/")


def test_an_exception_in_a_browser_page_is_a_json_500_too(debug, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("integrations.api.callback.oauth_exchange_code", broken)
    response = Client(raise_request_exception=False).get(
        "/api/integrations/oauth/callback/", {"code": "c", "state": "s"}
    )
    assert_json_error(response, HTTPStatus.INTERNAL_SERVER_ERROR)


def test_a_csrf_failure_on_the_start_page_is_a_json_403(debug):
    response = Client(enforce_csrf_checks=True).post(START, {"state": "any"})
    body = assert_json_error(response, HTTPStatus.FORBIDDEN)
    assert body["detail"].startswith("CSRF verification failed")


def test_a_session_write_without_the_csrf_token_is_a_json_403(debug, django_user_model, organization):
    from tests.factories import MembershipFactory

    user = django_user_model.objects.create_user(username="member", password="x")
    MembershipFactory(user=user, organization=organization, role="admin")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    body = assert_json_error(client.post("/api/api-keys/", {"name": "k"}, format="json"), HTTPStatus.FORBIDDEN)
    assert "CSRF" in body["detail"]


def test_a_host_not_allowed_is_a_json_400(settings, debug):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = Client(raise_request_exception=False).get("/api/organization/", HTTP_HOST="attacker.example")
    assert_json_error(response, HTTPStatus.BAD_REQUEST)


# --- what stays HTML ---------------------------------------------------------------------------


def test_the_oauth_pages_keep_their_own_html_errors(debug):
    page = Client().get("/api/integrations/oauth/callback/", {"error": "access_denied"})
    assert page.status_code == HTTPStatus.BAD_REQUEST
    assert page["Content-Type"].startswith("text/html")
    assert b"Authorization was not granted" in page.content


def test_admin_pages_keep_djangos_html(admin_client, debug):
    page = admin_client.get("/admin/no-such-app/")
    assert page.status_code == HTTPStatus.NOT_FOUND
    assert page["Content-Type"].startswith("text/html")
