"""Events: fan-out, idempotency, payload validation."""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from webhooks import tasks
from webhooks.models import Delivery, Event
from webhooks.services import trigger_event, webhook_create

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
        organization=organization, event="application.created", payload={"a": 2}, idempotency_key="k1"
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
