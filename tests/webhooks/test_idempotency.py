"""An idempotency key names one event: the same event again returns it, another one is a 409."""

from __future__ import annotations

import threading
from http import HTTPStatus

import pytest

from common.exceptions import ConflictError
from tests.api_errors import error_detail, error_type, field_errors, problem
from tests.concurrency import Concurrently
from webhooks.models import Delivery, Event
from webhooks.services import trigger_event

EVENTS = "/api/events/"


@pytest.mark.django_db
def test_the_same_event_returns_the_first_whatever_the_key_order(organization, webhook):
    first = trigger_event(
        organization=organization, event="application.created", payload={"a": 1, "b": [1, 2]}, idempotency_key="k"
    )
    again = trigger_event(
        organization=organization, event="application.created", payload={"b": [1, 2], "a": 1}, idempotency_key="k"
    )
    assert again.pk == first.pk and again.is_repeat and again.delivery_count == 1
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event", "payload", "differs"),
    [
        ("application.created", {"a": 2}, "payload"),
        ("application.created", {"a": 1, "extra": None}, "payload"),
        ("job.opened", {"a": 1}, "event"),
        ("job.opened", {}, "event and payload"),
    ],
)
def test_a_different_event_or_payload_is_a_conflict_naming_it(organization, webhook, event, payload, differs):
    first = trigger_event(organization=organization, event="application.created", payload={"a": 1}, idempotency_key="k")
    with pytest.raises(ConflictError) as raised:
        trigger_event(organization=organization, event=event, payload=payload, idempotency_key="k")
    assert f"with a different {differs}" in raised.value.message and str(first.pk) in raised.value.message
    assert raised.value.extra["event_id"] == str(first.pk)
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1


@pytest.mark.django_db
def test_the_api_answers_409_with_the_first_event_id(api_client, webhook):
    body = {"event": "application.created", "payload": {"id": 1}, "idempotency_key": "order-1"}
    first = api_client.post(EVENTS, body, format="json")
    assert first.status_code == HTTPStatus.ACCEPTED
    same = api_client.post(EVENTS, {**body, "payload": {"id": 1}}, format="json")
    assert same.status_code == HTTPStatus.ACCEPTED and same.json()["id"] == first.json()["id"]

    conflict = api_client.post(EVENTS, {**body, "payload": {"id": 2}}, format="json")
    assert conflict.status_code == HTTPStatus.CONFLICT
    assert error_type(conflict) == "conflict"
    assert '"order-1"' in error_detail(conflict) and "different payload" in error_detail(conflict)
    assert field_errors(conflict) == {"idempotency_key": ["Already used with a different payload."]}
    assert problem(conflict)["event_id"] == first.json()["id"]
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_give_one_event_and_a_conflict_for_the_different_one(organization, webhook):
    """Both writers reach the INSERT: the loser reads the winner's event (IntegrityError path)
    and must still compare it; a different payload is never answered with the other event."""
    for round_ in range(8):
        key = f"race-{round_}"
        outcomes: list[object] = []
        lock = threading.Lock()

        def send(payload, key=key, outcomes=outcomes):
            try:
                result: object = trigger_event(
                    organization=organization, event="application.created", payload=payload, idempotency_key=key
                ).pk
            except ConflictError as error:
                result = error
            with lock:
                outcomes.append((payload["n"], result))

        with Concurrently(lambda: send({"n": 1}), lambda: send({"n": 1}), lambda: send({"n": 2})):
            pass
        stored = Event.objects.get(idempotency_key=key)
        for n, result in outcomes:
            if n == stored.payload["n"]:
                assert result == stored.pk, outcomes
            else:
                assert isinstance(result, ConflictError) and result.extra["event_id"] == str(stored.pk), outcomes
    assert Event.objects.count() == 8
