"""Transforms: validated when saved, applied at delivery (signed), and a failing one fails only
its own delivery, never its batch."""

import json
from http import HTTPStatus

import pytest
from standardwebhooks import Webhook as ReferenceVerifier

from webhooks import tasks
from webhooks.models import Delivery, WebhookLog
from webhooks.services import trigger_event, webhook_create, webhook_update

pytestmark = pytest.mark.django_db


def test_the_transform_result_is_the_signed_data(organization, receiver):
    webhook = webhook_create(
        organization=organization,
        name="t",
        url=receiver.url,
        events=["*"],
        transform="{application: data.application_id, kind: type, candidate: data.candidate.id}",
    )
    plain = webhook_create(organization=organization, name="plain", url=receiver.url, events=["*"])
    payload = {"application_id": "app_1", "candidate": {"id": "cand_9", "email": "a@example.com"}}
    trigger_event(organization=organization, event="application.created", payload=payload)
    assert tasks.deliver_due() == 2
    requests = {r.headers["webhook-id"]: r for r in receiver.wait_for(2)}
    by_webhook = {d.webhook_id: requests[d.message_id] for d in Delivery.objects.all()}
    transformed = ReferenceVerifier(webhook.secret).verify(by_webhook[webhook.pk].body, by_webhook[webhook.pk].headers)
    assert transformed["data"] == {"application": "app_1", "kind": "application.created", "candidate": "cand_9"}
    assert transformed["type"] == "application.created"
    untouched = ReferenceVerifier(plain.secret).verify(by_webhook[plain.pk].body, by_webhook[plain.pk].headers)
    assert untouched["data"] == payload


def test_a_failing_transform_fails_its_delivery_only(organization, receiver):
    failing = webhook_create(
        organization=organization, name="bad", url=receiver.url, events=["*"], transform="abs(data.name)"
    )
    healthy = [
        webhook_create(organization=organization, name=f"ok{i}", url=receiver.url, events=["*"]) for i in range(3)
    ]
    transformed = webhook_create(
        organization=organization, name="ok-t", url=receiver.url, events=["*"], transform="data.name"
    )
    trigger_event(organization=organization, event="job.created", payload={"name": "Backend"})
    assert tasks.deliver_due() == 5  # one batch of five
    received = receiver.wait_for(4)
    assert len(received) == 4
    data = [json.loads(r.body)["data"] for r in received]
    assert data.count({"name": "Backend"}) == 3 and data.count("Backend") == 1
    log = WebhookLog.objects.get(webhook=failing)
    assert not log.success and log.response_status is None
    assert log.error == "Transform failed: in abs(), expected number, got string."
    assert "Backend" not in log.error  # no payload values in the log
    delivery = Delivery.objects.get(webhook=failing)
    assert delivery.state == Delivery.State.PENDING and delivery.last_error == log.error  # retried later
    assert all(WebhookLog.objects.get(webhook=w).success for w in [*healthy, transformed])
    # fixing the transform lets the retry through
    webhook_update(webhook=failing, transform="data")
    from tests.webhooks.helpers import make_due

    make_due()
    assert tasks.deliver_due() == 1
    assert json.loads(receiver.wait_for(5)[-1].body)["data"] == {"name": "Backend"}


def test_the_api_refuses_an_expression_that_does_not_parse(api_client, receiver):
    body = {"name": "n", "url": receiver.url, "events": ["*"], "transform": "data.["}
    response = api_client.post("/api/integrations/webhooks/", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Invalid JMESPath expression" in response.json()["errors"]["transform"][0]
    response = api_client.post("/api/integrations/webhooks/", {**body, "transform": "nosuch(data)"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "unknown function nosuch()" in response.json()["errors"]["transform"][0]
    created = api_client.post("/api/integrations/webhooks/", {**body, "transform": "data.job"}, format="json")
    assert created.status_code == HTTPStatus.CREATED, created.json()
    url = f"/api/integrations/webhooks/{created.json()['id']}/"
    assert api_client.get(url).json()["transform"] == "data.job"
    assert api_client.patch(url, {"transform": "[["}, format="json").status_code == HTTPStatus.BAD_REQUEST
    assert api_client.get(url).json()["transform"] == "data.job"
    assert api_client.patch(url, {"transform": ""}, format="json").json()["transform"] == ""
