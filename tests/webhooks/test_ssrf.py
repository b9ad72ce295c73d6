"""Targets on non-public addresses are refused at create/update and again at connect time."""

import socket
from http import HTTPStatus

import pytest

from tests.api_errors import error_fields
from webhooks import tasks
from webhooks.models import Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db

BLOCKED = [
    "http://127.0.0.1/hook",
    "http://localhost/hook",
    "http://2130706433/hook",  # decimal 127.0.0.1
    "http://0x7f000001/hook",  # hex 127.0.0.1
    "http://017700000001/hook",  # octal 127.0.0.1
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv6-mapped IPv4
    "http://0.0.0.0/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://224.0.0.1/hook",  # multicast
    "http://240.0.0.1/hook",  # reserved
    "http://[fd00::1]/hook",  # unique local
    "http://[fe80::1]/hook",  # link-local
]


@pytest.fixture
def strict(settings):
    settings.ALLOW_PRIVATE_URLS = False


@pytest.mark.parametrize("url", BLOCKED)
def test_non_public_targets_are_refused_at_create(strict, api_client, url):
    response = api_client.post(
        "/api/integrations/webhooks/", {"name": "x", "url": url, "events": ["job.created"]}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert "url" in error_fields(response)
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["http://user:pass@93.184.216.34/hook", "ftp://93.184.216.34/x", "http:///nohost", "not a url", "http://[::1"],
)
def test_malformed_or_credentialed_urls_are_refused(strict, api_client, url):
    response = api_client.post(
        "/api/integrations/webhooks/", {"name": "x", "url": url, "events": ["job.created"]}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Webhook.objects.exists()


def test_public_address_is_accepted(strict, api_client):
    response = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "x", "url": "https://93.184.216.34/hook", "events": ["job.created"]},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED


def test_update_to_a_private_target_is_refused_and_changes_nothing(strict, api_client, organization):
    webhook = webhook_create(organization=organization, name="x", url="https://93.184.216.34/hook", events=["*"])
    response = api_client.patch(
        f"/api/integrations/webhooks/{webhook.pk}/", {"url": "http://169.254.169.254/"}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    webhook.refresh_from_db()
    assert webhook.url == "https://93.184.216.34/hook"


def test_refused_again_at_connect_time(settings, organization, receiver):
    """A target that was allowed (or whose DNS changed since) is refused when connecting."""
    webhook_create(organization=organization, name="x", url=receiver.url, events=["*"])
    settings.ALLOW_PRIVATE_URLS = False
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    assert receiver.requests == []
    log = WebhookLog.objects.get()
    assert log.success is False and "not public" in log.error


def test_dns_rebinding_is_refused_at_connect_time(strict, monkeypatch, organization, receiver):
    """The name resolves to a public address when checked, then to loopback when connecting."""
    real_getaddrinfo = socket.getaddrinfo

    def public_answer(host, port, *args, **kwargs):
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", public_answer)
    port = receiver.server.server_address[1]
    webhook = webhook_create(organization=organization, name="x", url=f"http://rebind.test:{port}/hook", events=["*"])
    monkeypatch.undo()

    def loopback_answer(host, port, *args, **kwargs):
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_answer)
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    assert receiver.requests == []
    assert "not public" in WebhookLog.objects.get(webhook=webhook).error


@pytest.mark.parametrize(
    "name", ["Host", "Content-Length", "webhook-signature", "Webhook-Id", "Connection", "Transfer-Encoding", "bad name"]
)
def test_headers_that_would_override_the_delivery_are_refused(api_client, name):
    response = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "x", "url": "https://93.184.216.34/", "events": ["*"], "headers": {name: "v"}},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "headers" in error_fields(response)
