"""Erasure and the delivery engine writing at once: nothing lost, nothing left."""

from __future__ import annotations

import copy

import pytest

from tests.concurrency import Concurrently
from tests.webhooks.contracts.test_erasure import findings
from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.models import Delivery, Event
from webhooks.schemas import CATALOGUE_EXAMPLES
from webhooks.services import trigger_event, webhook_create
from webhooks.services.erasure import subject_erase

pytestmark = pytest.mark.django_db(transaction=True)  # threads see each other's commits
CANDIDATE = "cand_5521"
EMAIL = "dorothy.vaughan@example.org"


def test_erasing_while_a_delivery_is_in_flight_loses_no_delivery(organization, receiver):
    receiver.responder = lambda received: Reply(200, received.body, delay=1.0)  # slow, and echoes
    webhook_create(organization=organization, name="ATS", url=receiver.url, events=["*"], retry_attempts=0)
    payload = copy.deepcopy(CATALOGUE_EXAMPLES["application.created"])
    payload["candidate"].update(id=CANDIDATE, email=EMAIL)
    event = trigger_event(organization=organization, event="application.created", payload=payload)

    with Concurrently(
        tasks.deliver_due,
        lambda: subject_erase(organization=organization, candidate_id=CANDIDATE, email=EMAIL, erased_by="t"),
    ):
        pass
    tasks.deliver_due()
    # Erased before the claim or during the send: the delivery is pending either way, so its
    # event is redacted in place (not deleted) and the delivery still finishes.
    delivery = Delivery.objects.get(event_id=event.id)
    assert delivery.state == Delivery.State.SUCCEEDED
    assert Event.objects.get(pk=event.id).payload["candidate"]["email"] == "[erased]"
    # An attempt in flight during the erasure may log the receiver's echo after it: a second
    # run (docs/WEBHOOKS.md) erases that too.
    subject_erase(organization=organization, candidate_id=CANDIDATE, email=EMAIL, erased_by="t")
    assert findings(CANDIDATE, EMAIL) == []
