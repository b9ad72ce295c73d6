import logging
import time
from datetime import timedelta
from http import HTTPStatus
from io import StringIO

import pytest
import requests
import responses
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from common.exceptions import ApplicationError, UpstreamError
from integrations.models import Integration
from integrations.oauth.tokens import ReauthorizationRequired, get_access_token, oauth_refresh_token
from integrations.tasks import refresh_expiring_tokens
from tests.concurrency import tokens_at_once
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, form, token_body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def google_client(settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"


def authorized(organization=None, *, expires_in: timedelta | None = timedelta(hours=1), **kwargs) -> Integration:
    values = {
        "status": Integration.Status.ACTIVE,
        "credentials": {"access_token": "old-access", "refresh_token": "old-refresh", "token_type": "Bearer"},
        "token_expires_at": timezone.now() + expires_in if expires_in is not None else None,
    }
    if organization is not None:
        values["organization"] = organization
    return OAuthIntegrationFactory(**{**values, **kwargs})


@responses.activate
def test_fresh_token_is_returned_without_a_refresh():
    integration = authorized()
    assert get_access_token(integration) == "old-access"
    assert len(responses.calls) == 0


@responses.activate
def test_non_expiring_token_is_never_refreshed():
    assert get_access_token(authorized(expires_in=None)) == "old-access"
    assert len(responses.calls) == 0


def test_api_key_integration_returns_its_key():
    assert get_access_token(IntegrationFactory(credentials={"api_key": "k"})) == "k"


def test_token_expiring_within_the_margin_is_refreshed_and_rotated_refresh_token_stored():
    integration = authorized(expires_in=timedelta(minutes=4))
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("new-access", "new-refresh"), content_type="application/json")
        assert get_access_token(integration) == "new-access"
        sent = form(mock.calls[0].request)
    assert sent == {
        "grant_type": "refresh_token",
        "refresh_token": "old-refresh",
        "client_id": "google-client",
        "client_secret": "google-secret",
    }
    integration.refresh_from_db()
    assert integration.credentials["refresh_token"] == "new-refresh"
    assert integration.token_expires_at > timezone.now() + timedelta(minutes=59)


def test_refresh_without_a_new_refresh_token_keeps_the_stored_one():
    integration = authorized(expires_in=timedelta(minutes=-1))
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("new-access", refresh=None), content_type="application/json")
        assert get_access_token(integration) == "new-access"
    integration.refresh_from_db()
    assert integration.credentials["refresh_token"] == "old-refresh"
    assert integration.credentials["access_token"] == "new-access"


def test_custom_margin():
    integration = authorized(expires_in=timedelta(minutes=20))
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body(), content_type="application/json")
        assert get_access_token(integration, margin=timedelta(minutes=30)) == "new-access"


def test_refresh_endpoint_refreshes_now_and_returns_the_new_expiry(api_client, organization):
    integration = authorized(organization)
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body(expires_in=7200), content_type="application/json")
        response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code == HTTPStatus.OK
    integration.refresh_from_db()
    assert response.json()["token_expires_at"] == integration.token_expires_at.isoformat().replace("+00:00", "Z")
    assert integration.token_expires_at > timezone.now() + timedelta(minutes=119)
    assert "new-access" not in response.content.decode()


def test_refresh_of_unauthorized_or_non_oauth_integration_is_400(api_client, organization):
    pending = OAuthIntegrationFactory(organization=organization)
    api_key = IntegrationFactory(organization=organization)
    for integration in (pending, api_key):
        response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
        assert response.status_code == HTTPStatus.BAD_REQUEST


# --- invalid_grant: terminal -------------------------------------------------------------


def test_invalid_grant_marks_reauthorization_required_and_stops_retrying(api_client, organization, caplog):
    caplog.set_level(logging.DEBUG)
    integration = authorized(organization, expires_in=timedelta(minutes=-5))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GOOGLE_TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Token revoked"})
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
        integration.refresh_from_db()
        assert integration.status == Integration.Status.ERROR
        assert integration.needs_reauthorization is True
        assert integration.last_error.startswith("Re-authorization required")
        assert "invalid_grant" in integration.last_error
        # No retry storm: neither callers, the API nor the schedule call the provider again.
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
        response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert "Re-authorization required" in response.json()["detail"]
        assert refresh_expiring_tokens() == {"refreshed": 0, "failed": 0}
        assert len(mock.calls) == 1
    detail = api_client.get(f"/api/integrations/{integration.pk}/").json()
    assert detail["needs_reauthorization"] is True
    assert "old-refresh" not in caplog.text and "google-secret" not in caplog.text


def test_reauthorizing_clears_the_error(api_client, organization):
    integration = authorized(organization, needs_reauthorization=True, last_error="Re-authorization required")
    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.ERROR)
    state = api_client.get(f"/api/integrations/{integration.pk}/oauth/authorize/").json()["state"]
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("fresh"), content_type="application/json")
        response = api_client.post(
            f"/api/integrations/{integration.pk}/oauth/callback/", {"code": "c", "state": state}, format="json"
        )
    assert response.status_code == HTTPStatus.OK
    integration.refresh_from_db()
    assert (integration.status, integration.needs_reauthorization, integration.last_error) == ("active", False, "")
    assert get_access_token(integration) == "fresh"


# --- transient failures: backoff --------------------------------------------------------


@pytest.mark.parametrize("failure", [{"status": 503, "body": "down"}, {"body": requests.Timeout("slow")}])
def test_transient_failure_backs_off(failure):
    integration = authorized(expires_in=timedelta(minutes=-1))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GOOGLE_TOKEN_URL, **failure)
        with pytest.raises(UpstreamError):
            get_access_token(integration)
        integration.refresh_from_db()
        assert integration.refresh_failure_count == 1
        assert integration.refresh_retry_at > timezone.now()
        assert integration.status == Integration.Status.ACTIVE  # transient: not an integration error
        assert integration.needs_reauthorization is False
        assert integration.last_error.startswith("Token refresh failed")
        with pytest.raises(UpstreamError, match="backing off"):
            get_access_token(integration)
        assert len(mock.calls) == 1
        # Once the backoff has passed, the next attempt goes out and succeeds.
        Integration.objects.filter(pk=integration.pk).update(refresh_retry_at=timezone.now() - timedelta(seconds=1))
        mock.replace(responses.POST, GOOGLE_TOKEN_URL, body=token_body("back"), content_type="application/json")
        integration.refresh_from_db()
        assert get_access_token(integration) == "back"
    integration.refresh_from_db()
    assert (integration.refresh_failure_count, integration.refresh_retry_at, integration.last_error) == (0, None, "")


def test_while_backing_off_a_still_valid_token_is_served():
    integration = authorized(expires_in=timedelta(minutes=3), refresh_retry_at=timezone.now() + timedelta(minutes=1))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body(), content_type="application/json")
        assert get_access_token(integration) == "old-access"
        assert len(mock.calls) == 0


def test_backoff_grows():
    integration = authorized(expires_in=timedelta(minutes=-1))
    waits = []
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=500)
        for _ in range(3):
            Integration.objects.filter(pk=integration.pk).update(refresh_retry_at=None)
            integration.refresh_from_db()
            with pytest.raises(UpstreamError):
                oauth_refresh_token(integration=integration)
            integration.refresh_from_db()
            waits.append(integration.refresh_retry_at - timezone.now())
    assert waits[0] < waits[1] < waits[2]


def test_missing_refresh_token_is_a_clear_400():
    integration = authorized(expires_in=timedelta(minutes=-1))
    integration.credentials = {"access_token": "a"}
    integration.save()
    with pytest.raises(ApplicationError, match="no refresh token"):
        get_access_token(integration)


# --- proactive refresh ------------------------------------------------------------------


def test_schedule_is_registered_and_created():
    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="integrations.refresh_expiring_tokens")
    assert schedule.func == "integrations.tasks.refresh_expiring_tokens"
    assert schedule.minutes == 5


def test_proactive_refresh_refreshes_what_expires_before_the_next_run():
    expiring = authorized(expires_in=timedelta(minutes=8))  # < 5 min interval + 5 min margin
    fresh = authorized(expires_in=timedelta(hours=1))
    inactive = authorized(expires_in=timedelta(minutes=1), status=Integration.Status.INACTIVE)
    dead = authorized(expires_in=timedelta(minutes=1), needs_reauthorization=True)
    backing_off = authorized(expires_in=timedelta(minutes=1), refresh_retry_at=timezone.now() + timedelta(minutes=1))
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("proactive"), content_type="application/json")
        assert refresh_expiring_tokens() == {"refreshed": 1, "failed": 0}
        assert len(mock.calls) == 1
    for integration, token in [
        (expiring, "proactive"),
        (fresh, "old-access"),
        (inactive, "old-access"),
        (dead, "old-access"),
        (backing_off, "old-access"),
    ]:
        integration.refresh_from_db()
        assert integration.credentials["access_token"] == token


def test_proactive_refresh_counts_failures_and_continues():
    authorized(expires_in=timedelta(minutes=1))
    authorized(expires_in=timedelta(minutes=2))
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=503)
        mock.post(GOOGLE_TOKEN_URL, body=token_body(), content_type="application/json")
        assert refresh_expiring_tokens() == {"refreshed": 1, "failed": 1}


def test_an_undecryptable_integration_does_not_stop_the_proactive_refresh(settings, use_fernet_keys):
    original = list(settings.FERNET_KEYS)
    use_fernet_keys(["a-key-dropped-too-early"])
    lost = authorized(expires_in=timedelta(minutes=1))  # first in expiry order, every run
    use_fernet_keys(original)
    good = authorized(expires_in=timedelta(minutes=2))
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("refreshed"), content_type="application/json")
        assert refresh_expiring_tokens() == {"refreshed": 1, "failed": 1}
    good.refresh_from_db()
    lost.refresh_from_db()
    assert good.credentials["access_token"] == "refreshed"
    assert lost.credentials_readable is False


# --- concurrency ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_cause_exactly_one_refresh():
    """Two threads ask for a token at once: one refresh, both get the new token.

    On PostgreSQL the second thread blocks on the row lock (select_for_update) and then
    re-reads the refreshed row. SQLite ignores select_for_update, but its IMMEDIATE
    transactions (config/settings/base.py) serialize writers the same way.
    """
    integration = authorized(expires_in=timedelta(minutes=-1))
    calls = []

    def slow_token_endpoint(request):
        calls.append(form(request)["refresh_token"])
        time.sleep(0.5)  # hold the lock long enough for the other thread to queue behind it
        return (200, {"Content-Type": "application/json"}, token_body(f"refreshed-{len(calls)}", "rotated"))

    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, GOOGLE_TOKEN_URL, callback=slow_token_endpoint)
        results = tokens_at_once(integration.pk)
    assert calls == ["old-refresh"]
    assert results == ["refreshed-1", "refreshed-1"]
    integration.refresh_from_db()
    assert integration.credentials["refresh_token"] == "rotated"


def test_token_objects_do_not_show_secrets_in_repr(organization):
    from integrations.oauth.client import TokenSet, resolve_client

    tokens = TokenSet(access_token="ACCESS-x", refresh_token="REFRESH-x", extra={"id_token": "ID-x"})
    assert not {"ACCESS-x", "REFRESH-x", "ID-x"} & set(repr(tokens).replace("'", " ").split())
    assert "ACCESS-x" not in repr(tokens) and "REFRESH-x" not in repr(tokens)
    client = resolve_client(authorized(organization))
    assert "google-secret" not in repr(client)
