"""Log views never show payload values a schema marks sensitive (API and admin)."""

from __future__ import annotations

import copy
from http import HTTPStatus

import pytest
from django.urls import reverse

from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.models import Event, WebhookLog
from webhooks.schemas import CATALOGUE_EXAMPLES, MASK
from webhooks.services import event_type_create, trigger_event, webhook_create

pytestmark = pytest.mark.django_db
EMAIL = "ada.private@example.net"
SALARY = 123456


@pytest.fixture
def delivered(organization, receiver):
    receiver.responder = lambda received: Reply(200, received.body)  # echoes the payload back
    hook = webhook_create(organization=organization, name="ATS", url=receiver.url, events=["*"], retry_attempts=0)
    payload = copy.deepcopy(CATALOGUE_EXAMPLES["offer.sent"])
    payload["candidate"].update(email=EMAIL, first_name="Augusta")
    payload["offer"]["salary"] = SALARY
    trigger_event(organization=organization, event="offer.sent", payload=payload)
    event_type_create(
        organization=organization,
        name="custom.assessment",
        schema={"type": "object", "properties": {"score_note": {"type": "string", "x-sensitive": True}}},
    )
    trigger_event(organization=organization, event="custom.assessment", payload={"score_note": "weak at sql"})
    tasks.deliver_due()
    assert WebhookLog.objects.count() == 2 and EMAIL in WebhookLog.objects.get(event_type="offer.sent").response_body
    return hook


def assert_masked(text: str) -> None:
    for secret in (EMAIL, "Augusta", str(SALARY), "weak at sql"):
        assert secret not in text, secret
    assert MASK in text


def test_the_api_logs_mask_sensitive_values(api_client, delivered, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = api_client.get(f"/api/integrations/webhooks/{delivered.pk}/logs/")
    assert response.status_code == HTTPStatus.OK
    text = response.content.decode()
    assert_masked(text)
    assert CATALOGUE_EXAMPLES["offer.sent"]["candidate"]["id"] in text  # ids are not sensitive


def test_the_admin_log_and_event_pages_mask_sensitive_values(admin_client, delivered):
    for log in WebhookLog.objects.all():
        response = admin_client.get(reverse("admin:webhooks_webhooklog_change", args=[log.pk]))
        assert response.status_code == HTTPStatus.OK
        text = response.content.decode()
        assert_masked(text)
    for event in Event.objects.all():
        response = admin_client.get(reverse("admin:webhooks_event_change", args=[event.pk]))
        assert response.status_code == HTTPStatus.OK
        text = response.content.decode()
        assert EMAIL not in text and "weak at sql" not in text and MASK in text
    assert admin_client.get(reverse("admin:webhooks_event_changelist")).status_code == HTTPStatus.OK


def test_the_portal_log_pages_mask_sensitive_values(delivered):
    """The portal shows the request body (the payload) and the response body of an attempt:
    both with the sensitive values masked, as in the API and the admin."""
    from django.test import Client

    from tests.factories import MembershipFactory

    membership = MembershipFactory(role="admin", organization=delivered.organization)
    client = Client()
    client.force_login(membership.user)
    for log in WebhookLog.objects.all():
        response = client.get(f"/portal/webhooks/{delivered.pk}/logs/{log.pk}/")
        assert response.status_code == HTTPStatus.OK
        text = response.content.decode()
        assert_masked(text)


def test_a_page_of_logs_reads_the_payloads_it_masks_in_one_query(api_client, delivered, django_assert_num_queries):
    """The logs page joins nothing; the payloads of the attempts whose type marks values
    sensitive come in one query, whatever the number of logs."""
    for n in range(5):
        trigger_event(organization=delivered.organization, event="custom.assessment", payload={"score_note": f"n{n}xx"})
    tasks.deliver_due()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = api_client.get(f"/api/integrations/webhooks/{delivered.pk}/logs/")
    assert response.status_code == HTTPStatus.OK and len(response.json()["results"]) == 7
    text = response.content.decode()
    assert all(f"n{n}xx" not in text for n in range(5))
    log_queries = [q["sql"] for q in captured.captured_queries if 'FROM "webhook_logs"' in q["sql"]]
    payload_queries = [
        q["sql"] for q in captured.captured_queries if '"webhook_events"' in q["sql"] and "payload" in q["sql"]
    ]
    assert len(log_queries) == 1 and "JOIN" not in log_queries[0]
    assert len(payload_queries) == 1
