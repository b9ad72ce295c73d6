"""Secrets never leave: sentinel credentials (API key, OAuth client secret and tokens), the
webhook signing secret and a sensitive webhook header value must not appear in any API
response, admin page, log record, exception message or webhook log row.

Every stored secret contains SENTINEL; the scans look for the exact values.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

import pytest
import responses
from django.contrib import admin
from django.urls import reverse
from rest_framework.test import APIClient

from integrations.models import Integration
from tests.webhooks.receiver import Reply
from webhooks.models import SubscriberToken, Webhook, WebhookLog
from webhooks.services import webhook_create

from .tenants import (
    PARAMETER,
    SENTINEL,
    body_text,
    expected_read_status,
    fill,
    make_tenant,
    mock_provider_apis,
    parameter_value,
    schema_operations,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    return make_tenant("acme")


@pytest.fixture
def client_for(acme):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.raw_key}")
    return client


def stored_secrets(tenant) -> list[str]:
    """What the tenant stores as secret right now (rotations and refreshes included)."""
    values = [secret for secret in tenant.secrets if secret != tenant.raw_key]
    for integration in Integration.objects.filter(organization=tenant.organization):
        values += [v for k, v in integration.credentials.items() if k not in {"token_type", "scope"}]
    for webhook in Webhook.objects.filter(organization=tenant.organization):
        values += [webhook.secret, webhook.previous_secret or ""]
        values += [v for k, v in webhook.headers.items() if "auth" in k.lower() or "token" in k.lower()]
        if webhook.auth:
            values.append(webhook.auth["client_secret"])
        if webhook.client_certificate:
            values.append(webhook.client_certificate.split("-----END CERTIFICATE-----\n")[-1])  # the key
    values += [t for t in SubscriberToken.objects.values_list("access_token", flat=True) if t]
    return [value for value in set(values) if len(value) >= 8]


def assert_clean(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret appears in {where}"
    assert SENTINEL not in text, f"a sentinel secret appears in {where}"


def test_no_get_route_returns_a_secret(acme, client_for):
    operations = [op for op in schema_operations(APIClient()) if op[0] == "GET"]
    assert len(operations) >= 10
    for _, template, _ in operations:
        values = {name: parameter_value(template, name, acme) for name in PARAMETER.findall(template)}
        with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
            mock_provider_apis(outbound)
            response = client_for.get(fill(template, values))
        assert response.status_code == expected_read_status(template), template
        assert_clean(body_text(response), stored_secrets(acme), template)


def _flows(acme, client_for, receiver):
    """Drive every write and outbound flow once; yield (what, response text)."""
    oauth = acme.oauth_integration
    api = acme.integration
    webhook = acme.webhook
    # the webhook now posts to a local receiver that echoes what it got (headers included)
    Webhook.objects.filter(pk=webhook.pk).update(url=receiver.url)
    receiver.responder = lambda received: Reply(status=500, body=json.dumps(received.headers).encode())
    yield "test", client_for.post(f"/api/integrations/webhooks/{webhook.pk}/test/")
    log = WebhookLog.objects.filter(webhook=webhook).latest("created_at")
    yield "replay", client_for.post(f"/api/integrations/webhooks/{webhook.pk}/logs/{log.pk}/replay/")
    yield "logs", client_for.get(f"/api/integrations/webhooks/{webhook.pk}/logs/")
    yield (
        "webhook update",
        client_for.patch(
            f"/api/integrations/webhooks/{webhook.pk}/", {"headers": {"Authorization": "[redacted]"}}, format="json"
        ),
    )
    yield "webhook detail", client_for.get(f"/api/integrations/webhooks/{webhook.pk}/")
    # sync errors that quote a credential are redacted
    yield (
        "sync",
        client_for.post(
            f"/api/integrations/{api.pk}/sync/",
            {"success": False, "error": f"401 for key {api.credentials['api_key']}"},
            format="json",
        ),
    )
    # an integration update with the same secrets (PUT), and a credential replacement
    yield (
        "integration put",
        client_for.put(
            f"/api/integrations/{api.pk}/",
            {"name": api.name, "provider": "bamboohr", "auth_type": "api_key", "config": {"company_domain": "acme"}},
            format="json",
        ),
    )
    # OAuth: the provider echoes the refresh token and client secret in its refusal...
    with responses.RequestsMock() as mocked:
        echo = f"bad grant {oauth.credentials['refresh_token']} for {oauth.credentials['client_secret']}"
        mocked.add(
            responses.POST,
            oauth.config["token_url"],
            json={"error": "invalid_grant", "error_description": echo},
            status=400,
        )
        yield "refresh refused", client_for.post(f"/api/integrations/{oauth.pk}/oauth/refresh/")
    # ...or fails with a 5xx page quoting them
    Integration.objects.filter(pk=oauth.pk).update(status="active", needs_reauthorization=False, refresh_retry_at=None)
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, oauth.config["token_url"], body=echo, status=503)
        yield "refresh failed", client_for.post(f"/api/integrations/{oauth.pk}/oauth/refresh/")
    # a full authorization that stores fresh sentinel tokens
    start = client_for.get(f"/api/integrations/{oauth.pk}/oauth/authorize/").json()
    fresh = {"access_token": f"{SENTINEL}-fresh-access", "refresh_token": f"{SENTINEL}-fresh-refresh", "expires_in": 60}
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, oauth.config["token_url"], json=fresh)
        yield (
            "callback",
            client_for.post(
                f"/api/integrations/{oauth.pk}/oauth/callback/",
                {"code": "the-code", "state": start["state"]},
                format="json",
            ),
        )
        yield (
            "browser callback replay",
            APIClient().get(f"/api/integrations/oauth/callback/?code=the-code&state={start['state']}"),
        )
    with responses.RequestsMock() as mocked:
        mocked.add(responses.POST, oauth.config["token_url"], json={**fresh, "access_token": f"{SENTINEL}-third"})
        yield "refresh", client_for.post(f"/api/integrations/{oauth.pk}/oauth/refresh/")
    yield "events", client_for.post("/api/events/", {"event": "job.created", "payload": {}}, format="json")


def test_flows_leak_nothing_in_responses_logs_or_log_rows(acme, client_for, receiver, caplog, settings):
    settings.ALLOW_PRIVATE_URLS = True
    caplog.set_level(logging.DEBUG)
    seen = []
    for what, response in _flows(acme, client_for, receiver):
        assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR or response.status_code == 502, what
        seen.append((what, body_text(response)))
    assert len(receiver.requests) >= 2  # the echoing receiver did get the sensitive header
    # ...its subscriber bearer token (it replaces the custom Authorization header)
    assert any(f"Bearer {SENTINEL}-acme-subscriber-token" in json.dumps(r.headers) for r in receiver.requests)
    secrets = stored_secrets(acme)
    assert any("fresh" in s or "third" in s for s in secrets)  # the OAuth flow did store tokens
    for what, text in seen:
        assert_clean(text, secrets, f"the {what} response")
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(getattr(record, "args", ""))
        assert_clean(text, secrets, f"log record {record.name}: {record.getMessage()[:80]}")
    for row in WebhookLog.objects.filter(organization=acme.organization).values():
        assert_clean(json.dumps(row, default=str), secrets, "a webhook log row")
    for integration in Integration.objects.filter(organization=acme.organization):
        assert_clean(integration.last_error, secrets, "last_error")
        assert_clean(repr(integration) + str(integration), secrets, "repr(integration)")


def test_exception_messages_do_not_carry_secrets(acme):
    from common.exceptions import ApplicationError
    from integrations.oauth.tokens import oauth_refresh_token

    oauth = acme.oauth_integration
    with responses.RequestsMock() as mocked:
        echo = f"{oauth.credentials['refresh_token']} / {oauth.credentials['client_secret']}"
        mocked.add(responses.POST, oauth.config["token_url"], body=echo, status=502)
        with pytest.raises(ApplicationError) as raised:
            oauth_refresh_token(integration=oauth, force=True)
    assert_clean(
        str(raised.value) + repr(raised.value) + json.dumps(raised.value.extra), stored_secrets(acme), "the exception"
    )


def test_admin_pages_show_no_secret(acme, admin_client, rf):
    from django.contrib.auth import get_user_model

    secrets = stored_secrets(acme)
    request = rf.get("/admin/")
    request.user = get_user_model().objects.get(is_superuser=True)
    pages = 0
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls = [reverse("admin:{}_{}_changelist".format(*info))]
        if model_admin.has_add_permission(request):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
        urls += [
            reverse("admin:{}_{}_change".format(*info), args=[obj.pk]) for obj in model_admin.get_queryset(request)[:20]
        ]
        for url in urls:
            response = admin_client.get(url)
            assert response.status_code == HTTPStatus.OK, url
            assert_clean(body_text(response), secrets, url)
            pages += 1
    assert pages >= 15


def test_a_new_webhook_secret_is_shown_once(client_for, acme):
    response = client_for.post(
        "/api/integrations/webhooks/", {"name": "n", "url": "https://a.test/", "events": ["*"]}, format="json"
    )
    secret = response.json()["secret"]
    for url in ("/api/integrations/webhooks/", f"/api/integrations/webhooks/{response.json()['id']}/"):
        assert secret not in body_text(client_for.get(url))


def test_a_received_echo_of_the_sensitive_header_is_redacted_in_the_log(organization, receiver, settings):
    """Found by this suite: a receiver echoing its request put the header value in response_body."""
    from webhooks import tasks
    from webhooks.services import trigger_event

    settings.ALLOW_PRIVATE_URLS = True
    value = f"{SENTINEL}-echoed"
    webhook_create(organization=organization, name="x", url=receiver.url, events=["*"], headers={"X-Api-Key": value})
    receiver.responder = lambda received: Reply(status=400, body=f"bad key {received.headers['x-api-key']}".encode())
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    log = WebhookLog.objects.get()
    assert log.response_body == "bad key [redacted]"
    assert value not in json.dumps(log.request_headers)
