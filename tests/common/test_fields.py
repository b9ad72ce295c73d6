"""Rows whose encrypted values no key in FERNET_KEYS decrypts: they read, never a 500."""

from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from cryptography.fernet import InvalidToken
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from health.services import health_check_now
from integrations.models import Integration, OAuthState
from integrations.oauth.binding import cookie_name
from integrations.oauth.flows import hash_state
from tests.health.conftest import custom, oauth
from tests.integrations.conftest import SENTINEL
from webhooks import tasks
from webhooks.engine.policy import UNREADABLE_SECRET
from webhooks.models import Delivery, Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def lost(organization, receiver, use_fernet_keys):
    """An integration, an OAuth state and a webhook with a delivered event, all encrypted
    with a key that is then dropped from FERNET_KEYS."""
    use_fernet_keys(["a-key-dropped-too-early"])
    integration = custom(organization, receiver.url, key=SENTINEL, name="lost credentials")
    state = OAuthState.objects.create(
        integration=integration,
        organization=organization,
        state_hash="f" * 64,
        code_verifier="verifier-" + SENTINEL,
        redirect_uri="http://127.0.0.1:8000/api/integrations/oauth/callback/",
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    webhook = webhook_create(organization=organization, name="lost secret", url=receiver.url, events=["*"])
    trigger_event(organization=organization, event="job.created", payload={})
    assert tasks.deliver_due() == 1
    receiver.wait_for(1)
    use_fernet_keys(["the-new-key"])
    return {"integration": integration, "state": state, "webhook": webhook}


def test_the_objects_still_load_and_say_which_values_are_unreadable(lost):
    integration = Integration.objects.get(pk=lost["integration"].pk)
    webhook = Webhook.objects.get(pk=lost["webhook"].pk)
    assert integration.credentials_readable is False
    assert webhook.secret_readable is False
    assert integration.credential_fields == []
    assert SENTINEL not in repr(integration.credentials) + str(OAuthState.objects.get().code_verifier)
    with pytest.raises(InvalidToken, match="put the old key back in FERNET_KEYS"):
        integration.credentials.get("api_key")


def test_saving_a_row_keeps_the_unreadable_ciphertext(lost, use_fernet_keys):
    integration = Integration.objects.get(pk=lost["integration"].pk)
    integration.name = "renamed"
    integration.save()
    webhook = Webhook.objects.get(pk=lost["webhook"].pk)
    webhook.save()
    use_fernet_keys(["the-new-key", "a-key-dropped-too-early"])
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": SENTINEL}
    assert Webhook.objects.get(pk=webhook.pk).secret == lost["webhook"].secret


def test_api_lists_and_details_answer_with_a_readable_flag(lost, api_client):
    integration, webhook = lost["integration"], lost["webhook"]
    urls = [
        "/api/integrations/",
        f"/api/integrations/{integration.pk}/",
        f"/api/integrations/provider/{integration.provider}/",
        f"/api/integrations/{integration.pk}/health/",
        "/api/integrations/webhooks/",
        f"/api/integrations/webhooks/{webhook.pk}/",
        f"/api/integrations/webhooks/{webhook.pk}/logs/",
        f"/api/integrations/webhooks/{webhook.pk}/stats/",
    ]
    for url in urls:
        response = api_client.get(url)
        assert response.status_code == HTTPStatus.OK, url
        assert SENTINEL not in response.content.decode(), url
    assert api_client.get("/api/integrations/").json()["results"][0]["credentials_readable"] is False
    assert api_client.get(f"/api/integrations/webhooks/{webhook.pk}/").json()["secret_readable"] is False
    assert len(api_client.get(f"/api/integrations/webhooks/{webhook.pk}/logs/").json()["results"]) == 1


def test_one_unreadable_row_does_not_break_a_list_of_readable_ones(lost, organization, receiver, api_client):
    """The rows written under the new key list beside the unreadable one, each with its state."""
    readable = custom(organization, receiver.url, key="fresh", name="readable credentials")
    fresh_hook = webhook_create(organization=organization, name="fresh secret", url=receiver.url, events=["*"])
    listed = api_client.get("/api/integrations/")
    assert listed.status_code == HTTPStatus.OK
    flags = {row["id"]: row["credentials_readable"] for row in listed.json()["results"]}
    assert flags == {str(lost["integration"].pk): False, str(readable.pk): True}
    hooks = api_client.get("/api/integrations/webhooks/")
    assert hooks.status_code == HTTPStatus.OK
    flags = {row["id"]: row["secret_readable"] for row in hooks.json()["results"]}
    assert flags == {str(lost["webhook"].pk): False, str(fresh_hook.pk): True}
    filtered = api_client.get("/api/integrations/?status=active")
    assert filtered.status_code == HTTPStatus.OK


def test_api_writes_on_an_unreadable_row_answer_4xx_or_repair_it(lost, api_client):
    integration, webhook = lost["integration"], lost["webhook"]
    renamed = api_client.patch(f"/api/integrations/{integration.pk}/", {"name": "renamed"}, format="json")
    assert renamed.status_code == HTTPStatus.CONFLICT
    assert "reencrypt_credentials" in renamed.json()["detail"]
    # New credentials repair the integration.
    repaired = api_client.patch(
        f"/api/integrations/{integration.pk}/", {"credentials": {"api_key": "fresh-key"}}, format="json"
    )
    assert repaired.status_code == HTTPStatus.OK, repaired.content
    assert repaired.json()["credentials_readable"] is True
    assert api_client.patch(f"/api/integrations/webhooks/{webhook.pk}/", {"name": "x"}, format="json").status_code == (
        HTTPStatus.OK
    )
    # A new signing secret repairs the webhook: the unreadable one does not linger as `previous`.
    rotated = api_client.post(f"/api/integrations/webhooks/{webhook.pk}/rotate-secret/")
    assert rotated.status_code == HTTPStatus.OK
    assert rotated.json()["previous_secret_expires_at"] is None
    assert Webhook.objects.get(pk=webhook.pk).secret_readable is True


def test_admin_changelists_and_change_pages_load(lost, admin_client):
    objects = {
        Integration: lost["integration"],
        OAuthState: lost["state"],
        Webhook: lost["webhook"],
        WebhookLog: WebhookLog.objects.get(),
        Delivery: Delivery.objects.get(),
    }
    checked = 0
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        response = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert response.status_code == HTTPStatus.OK, model
        row = objects.get(model) or objects.get(model._meta.concrete_model)
        if row is not None:
            response = admin_client.get(reverse("admin:{}_{}_change".format(*info), args=[row.pk]))
            assert response.status_code == HTTPStatus.OK, model
            assert SENTINEL not in response.content.decode()
            checked += 1
    assert checked >= 4
    page = admin_client.get(reverse("admin:integrations_integration_change", args=[lost["integration"].pk]))
    assert "cannot be decrypted with FERNET_KEYS" in page.content.decode()


def test_deliveries_fail_with_what_the_operator_should_do(lost, organization, receiver, api_client):
    receiver.requests.clear()
    trigger_event(organization=organization, event="job.opened", payload={})
    assert tasks.deliver_due() == 1
    log = WebhookLog.objects.filter(event_type="job.opened").get()
    assert log.success is False
    assert log.error == UNREADABLE_SECRET
    assert "Put the old key back in FERNET_KEYS and run reencrypt_credentials" in log.error
    assert "rotate the webhook's secret" in log.error
    assert receiver.requests == []
    tested = api_client.post(f"/api/integrations/webhooks/{lost['webhook'].pk}/test/")
    assert tested.status_code == HTTPStatus.OK
    assert tested.json()["error"] == UNREADABLE_SECRET


def test_a_health_check_records_why_it_cannot_check(lost, receiver):
    receiver.requests.clear()
    record = health_check_now(integration=Integration.objects.get(pk=lost["integration"].pk))
    assert record.status == Integration.HealthStatus.UNHEALTHY
    assert "cannot be decrypted with FERNET_KEYS" in record.error
    assert "reencrypt_credentials" in record.error
    assert receiver.requests == []
    assert Integration.objects.get(pk=lost["integration"].pk).health_status == Integration.HealthStatus.UNHEALTHY


def test_oauth_actions_that_need_the_tokens_answer_409_with_what_to_do(organization, api_client, use_fernet_keys):
    use_fernet_keys(["a-key-dropped-too-early"])
    integration = oauth(organization, token=SENTINEL, token_expires_at=timezone.now() + timedelta(minutes=1))
    use_fernet_keys(["the-new-key"])
    for method, url in [
        ("post", f"/api/integrations/{integration.pk}/oauth/refresh/"),
        ("get", f"/api/integrations/{integration.pk}/oauth/authorize/"),
        ("post", f"/api/integrations/{integration.pk}/health/check/"),
    ]:
        response = getattr(api_client, method)(url)
        assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, (url, response.content)
        assert SENTINEL not in response.content.decode()
    refreshed = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert refreshed.status_code == HTTPStatus.CONFLICT
    assert "put the old key back in FERNET_KEYS" in refreshed.json()["detail"]


def test_the_browser_oauth_callback_with_an_unreadable_verifier_answers_a_page(
    organization, client, settings, use_fernet_keys
):
    settings.GOOGLE_CLIENT_ID, settings.GOOGLE_CLIENT_SECRET = "google-client", "google-secret"
    use_fernet_keys(["a-key-dropped-too-early"])
    integration = oauth(organization, credentials={}, status=Integration.Status.PENDING)
    OAuthState.objects.create(
        integration=integration,
        organization=organization,
        state_hash=hash_state("the-state"),
        binding_hash=hash_state("this-browser"),  # bound to `client` (integrations/oauth/binding.py)
        code_verifier="verifier-" + SENTINEL,
        redirect_uri="http://127.0.0.1:8000/api/integrations/oauth/callback/",
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    client.cookies[cookie_name(hash_state("the-state"))] = "this-browser"
    use_fernet_keys(["the-new-key"])
    with responses.RequestsMock():  # no request leaves: the exchange stops before sending
        response = client.get("/api/integrations/oauth/callback/", {"code": "the-code", "state": "the-state"})
    assert response.status_code == HTTPStatus.CONFLICT
    assert "put the old key back in FERNET_KEYS" in response.content.decode()
    assert SENTINEL not in response.content.decode()
