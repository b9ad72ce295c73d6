"""Masked header secrets cannot be recovered by moving a webhook to another host.

The API shows a stored `Authorization` header as "[redacted]"; a URL change to another
origin must not carry it along (the next test send would deliver it to the new host). It
has to be entered again or removed; a change within the same host keeps it.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from common.redaction import REDACTED
from tests.api_errors import error_fields, field_errors
from tests.webhooks.receiver import Receiver
from webhooks.models import Webhook
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

BASE = "/api/integrations/webhooks/"
TOKEN = "Bearer stored-header-secret-42"


@pytest.fixture
def other_host():
    """A second receiver, reached under another host name."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def webhook(organization, receiver):
    return webhook_create(
        organization=organization,
        name="ats",
        url=receiver.url,
        events=["*"],
        headers={"Authorization": TOKEN, "X-Team": "blue"},
    )


def elsewhere(server) -> str:
    return server.url.replace("127.0.0.1", "localhost")


def _received_values(server) -> list[str]:
    return [value for request in server.requests for value in request.headers.values()]


@pytest.mark.parametrize(
    "body",
    [{}, {"headers": {"Authorization": REDACTED, "X-Team": "blue"}}, {"headers": {"Authorization": REDACTED}}],
    ids=["headers-omitted", "headers-masked", "only-the-masked-one"],
)
def test_moving_to_another_host_requires_the_secret_headers_again(api_client, webhook, other_host, body):
    response = api_client.patch(f"{BASE}{webhook.pk}/", {"url": elsewhere(other_host), **body}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Authorization" in " ".join(field_errors(response)["headers"])
    webhook.refresh_from_db()
    assert webhook.url != elsewhere(other_host) and webhook.headers["Authorization"] == TOKEN
    api_client.post(f"{BASE}{webhook.pk}/test/")
    assert TOKEN not in _received_values(other_host)


def test_moving_with_new_values_or_without_them_is_allowed(api_client, webhook, receiver, other_host):
    response = api_client.patch(
        f"{BASE}{webhook.pk}/",
        {"url": elsewhere(other_host), "headers": {"Authorization": "Bearer new-one", "X-Team": REDACTED}},
        format="json",
    )
    assert response.status_code == HTTPStatus.OK, response.json()
    assert response.json()["headers"] == {"Authorization": REDACTED, "X-Team": "blue"}
    api_client.post(f"{BASE}{webhook.pk}/test/")
    [request] = other_host.wait_for(1)
    assert request.headers["authorization"] == "Bearer new-one" and TOKEN not in _received_values(other_host)

    response = api_client.patch(
        f"{BASE}{webhook.pk}/", {"url": receiver.url, "headers": {"X-Team": "red"}}, format="json"
    )
    assert response.status_code == HTTPStatus.OK
    assert Webhook.objects.get(pk=webhook.pk).headers == {"X-Team": "red"}


def test_a_same_host_change_keeps_them(api_client, webhook, receiver):
    response = api_client.patch(f"{BASE}{webhook.pk}/", {"url": receiver.url + "moved"}, format="json")
    assert response.status_code == HTTPStatus.OK
    body = api_client.get(f"{BASE}{webhook.pk}/").json()
    writable = {key: body[key] for key in ("name", "events", "integration", "headers", "retry_attempts", "is_active")}
    response = api_client.put(f"{BASE}{webhook.pk}/", {**writable, "url": receiver.url + "again"}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert Webhook.objects.get(pk=webhook.pk).headers == {"Authorization": TOKEN, "X-Team": "blue"}


def test_another_scheme_or_port_is_another_host(api_client, webhook, receiver):
    for url in (receiver.url.replace("http://", "https://"), "http://127.0.0.1:1/"):
        response = api_client.patch(f"{BASE}{webhook.pk}/", {"url": url}, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST and "headers" in error_fields(response)


def _admin_post(admin_client, webhook, **extra):
    data = {
        "name": webhook.name,
        "url": webhook.url,
        "events": '["*"]',
        "retry_attempts": webhook.retry_attempts,
        "is_active": "on",
        "initial-is_active": "on",
        **extra,
    }
    return admin_client.post(reverse("admin:webhooks_webhook_change", args=[webhook.pk]), data)


def test_admin_moving_to_another_host_requires_removing_them(admin_client, webhook, other_host):
    response = _admin_post(admin_client, webhook, url=elsewhere(other_host))
    assert response.status_code == HTTPStatus.OK
    assert "Authorization" in str(response.context["adminform"].form.errors)
    webhook.refresh_from_db()
    assert webhook.url != elsewhere(other_host) and webhook.headers["Authorization"] == TOKEN

    response = _admin_post(admin_client, webhook, url=elsewhere(other_host), remove_sensitive_headers="on")
    assert response.status_code == HTTPStatus.FOUND
    webhook.refresh_from_db()
    assert webhook.url == elsewhere(other_host) and webhook.headers == {"X-Team": "blue"}


def test_admin_same_host_change_keeps_them(admin_client, webhook, receiver):
    response = _admin_post(admin_client, webhook, url=receiver.url + "moved")
    assert response.status_code == HTTPStatus.FOUND
    webhook.refresh_from_db()
    assert webhook.url.endswith("moved") and webhook.headers["Authorization"] == TOKEN
