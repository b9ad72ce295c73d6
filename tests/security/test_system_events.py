"""Forged operational events: a client cannot emit what receivers trust as the platform's.

`integration.*` and `webhook.*` events (`webhook.test` included) are system-only
(webhooks/events.py): any write key posting one to `POST /api/events/` gets a JSON 400
naming the rule, nothing is stored and no receiver hears of it. The rule goes by
namespace, so an event registered later under those prefixes is covered too.
"""

from http import HTTPStatus

import pytest

from tests.api_errors import field_errors
from tests.factories import MembershipFactory, UserFactory
from webhooks import tasks
from webhooks.models import Delivery, Event
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db

FORGED_UNHEALTHY = {
    "integration": {"id": "00000000-0000-0000-0000-000000000000", "name": "Payroll", "provider": "rippling"},
    "status": "error",
    "health_status": "unhealthy",
    "consecutive_unhealthy": 3,
    "error": "Reconnect at https://attacker.example/login",
}


@pytest.fixture
def subscriber(organization, receiver):
    return webhook_create(organization=organization, name="ops", url=receiver.url, events=["*"])


@pytest.mark.parametrize(
    "event",
    [
        "integration.unhealthy",
        "integration.recovered",
        "webhook.disabled",
        "webhook.delivery.exhausted",
        "webhook.test",
        "integration.issue.opened",  # not registered (yet): the namespace decides
        " webhook.disabled ",  # trimmed like any field
    ],
)
@pytest.mark.parametrize("idempotency_key", [None, "forged-1"])
def test_a_write_key_cannot_forge_an_operational_event(api_client, subscriber, receiver, event, idempotency_key):
    body = {"event": event, "payload": FORGED_UNHEALTHY}
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    response = api_client.post("/api/events/", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "application/json"
    [message] = field_errors(response)["event"]
    assert "system-only event" in message and "integration.* and webhook.*" in message
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert tasks.deliver_due() == 0 and receiver.requests == []


def test_an_organization_admin_in_the_browser_cannot_forge_one_either(organization, subscriber, client):
    user = UserFactory()
    MembershipFactory(user=user, organization=organization, role="admin")
    client.force_login(user)
    response = client.post(
        "/api/events/", {"event": "integration.unhealthy", "payload": FORGED_UNHEALTHY}, content_type="application/json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Event.objects.exists()


def test_the_platform_still_emits_them(organization, subscriber, receiver):
    trigger_event(organization=organization, event="integration.unhealthy", payload=FORGED_UNHEALTHY)
    assert tasks.deliver_due() == 1
    assert receiver.wait_for(1)[0].json()["type"] == "integration.unhealthy"
