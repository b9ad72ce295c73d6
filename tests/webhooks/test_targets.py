"""Webhook targets: which URLs, addresses and header values are accepted."""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError

from common.ssrf import is_public_address
from webhooks.models import Webhook
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", [" acme", "\tacme", "a\x00b", "a\x01b", "a\rb"])
def test_header_values_requests_cannot_send_are_refused(api_client, receiver, value):
    response = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "h", "url": receiver.url, "events": ["*"], "headers": {"X-Tenant": value}},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST  # NUL: already the JSON parser
    with pytest.raises(ValidationError):
        webhook_create(
            organization=api_client.organization, name="h", url=receiver.url, events=["*"], headers={"X": value}
        )
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("address", ["2002:a9fe:a9fe::1", "192.88.99.1", "fec0::1", "::7f00:1", "100.64.0.1"])
def test_one_address_rule_at_save_and_connect_time(address):
    import ipaddress

    assert is_public_address(ipaddress.ip_address(address)) is False
