"""Events: fan-out (and who is left out of it), idempotency, payload validation, system-only events."""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from webhooks import events as catalogue
from webhooks import tasks
from webhooks.models import Delivery, Event
from webhooks.services import trigger_client_event, trigger_event, webhook_create

pytestmark = pytest.mark.django_db


def test_fan_out_only_to_active_subscribed_webhooks_of_the_organization(
    organization, other_organization, receiver, webhook
):
    webhook_create(organization=organization, name="all", url=receiver.url, events=["*"])
    webhook_create(organization=organization, name="jobs", url=receiver.url, events=["job.created"])
    webhook_create(organization=organization, name="off", url=receiver.url, events=["*"], is_active=False)
    webhook_create(organization=other_organization, name="theirs", url=receiver.url, events=["*"])
    event = trigger_event(organization=organization, event="application.created", payload={})
    assert event.delivery_count == 2
    assert tasks.deliver_due() == 2
    assert {r.headers["webhook-id"] for r in receiver.wait_for(2)} == {d.message_id for d in Delivery.objects.all()}


def test_rollback_sends_nothing(organization, webhook, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            trigger_event(organization=organization, event="application.created", payload={})
            raise RuntimeError("caller fails")
    assert callbacks == []
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert tasks.deliver_due() == 0
    assert receiver.requests == []


def test_commit_enqueues_delivery_work(organization, webhook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        trigger_event(organization=organization, event="application.created", payload={})
    assert len(callbacks) == 1


def test_idempotency_key_returns_first_event_and_creates_no_deliveries(organization, webhook):
    first = trigger_event(
        organization=organization, event="application.created", payload={"a": 1}, idempotency_key="k1"
    )
    again = trigger_event(
        organization=organization, event="application.created", payload={"a": 1}, idempotency_key="k1"
    )
    assert again.pk == first.pk and again.payload == {"a": 1} and again.delivery_count == 1
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1


@pytest.mark.parametrize(
    "payload", [{"a": "x\u0000y"}, {"k\u0000": 1}, {"a": ["\u0000"]}, {"a": float("nan")}, {"a": "\ud800"}]
)
def test_payloads_postgres_cannot_store_are_refused(organization, webhook, api_client, payload):
    with pytest.raises(ValidationError):
        trigger_event(organization=organization, event="job.opened", payload=payload)
    assert not Delivery.objects.exists()


def test_nul_in_payload_via_the_api_is_a_400(api_client, webhook):
    response = api_client.post("/api/events/", {"event": "job.opened", "payload": {"a": "x\u0000y"}}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.parametrize("idempotency_key", [None, "k1"])  # PostgreSQL: the one-statement path, then the ORM one
def test_excluded_webhooks_get_no_delivery(organization, receiver, idempotency_key):
    subject = webhook_create(organization=organization, name="subject", url=receiver.url, events=["*"])
    other = webhook_create(organization=organization, name="other", url=receiver.url, events=["*"])
    also = webhook_create(organization=organization, name="also", url=receiver.url, events=["job.opened"])
    event = trigger_event(
        organization=organization,
        event="job.opened",
        payload={},
        idempotency_key=idempotency_key,
        exclude_webhook_ids=[subject.pk],
    )
    assert event.delivery_count == 2
    assert set(Delivery.objects.values_list("webhook_id", flat=True)) == {other.pk, also.pk}
    everyone = trigger_event(organization=organization, event="job.opened", payload={})
    assert everyone.delivery_count == 3


@pytest.mark.parametrize(
    "event", ["integration.unhealthy", "integration.recovered", "webhook.disabled", "webhook.delivery.exhausted"]
)
def test_the_system_triggers_system_only_events(organization, webhook, event):
    assert trigger_event(organization=organization, event=event, payload={}).type == event


@pytest.mark.parametrize(
    "event",
    ["integration.unhealthy", "webhook.disabled", "webhook.delivery.exhausted", "webhook.test", "integration.x"],
)
def test_a_client_cannot_trigger_system_only_events(organization, webhook, event):
    with pytest.raises(ValidationError) as error:
        trigger_client_event(organization=organization, event=event, payload={})
    [message] = error.value.message_dict["event"]
    assert message.startswith(f'"{event}" is a system-only event')
    assert "integration.* and webhook.*" in message
    assert not Event.objects.exists() and not Delivery.objects.exists()


def test_a_client_triggers_other_events(organization, webhook):
    assert trigger_client_event(organization=organization, event="application.created", payload={}).delivery_count == 1


def test_events_registered_later_in_a_system_namespace_are_system_only(organization, webhook, monkeypatch):
    monkeypatch.setattr(catalogue, "_catalogue", catalogue.event_catalogue())  # undone after the test
    catalogue.register_event("integration.registered.later", "registered by another app")
    catalogue.register_event("candidate.registered_later", "registered by another app")
    with pytest.raises(ValidationError, match="system-only"):
        trigger_client_event(organization=organization, event="integration.registered.later", payload={})
    assert trigger_event(organization=organization, event="integration.registered.later", payload={}).pk
    assert trigger_client_event(organization=organization, event="candidate.registered_later", payload={}).pk
