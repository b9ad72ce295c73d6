"""Bulk triggers: `trigger_events` and `POST /api/events/batch/`, one transaction, per-item results."""

from __future__ import annotations

import threading
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.api_errors import field_errors
from tests.concurrency import Concurrently
from webhooks import scheduling
from webhooks.models import Delivery, Event
from webhooks.services import MAX_BATCH_EVENTS, trigger_client_events, trigger_event, trigger_events, webhook_create

BATCH = "/api/events/batch/"
pytestmark = pytest.mark.django_db


def created(n: int, start: int = 0, event: str = "application.created") -> list[dict]:
    return [{"event": event, "payload": {"n": start + i}} for i in range(n)]


def test_each_item_is_an_event_with_its_deliveries(organization, webhook, receiver):
    other = webhook_create(organization=organization, name="Jobs", url=receiver.url, events=["job.opened", "*"])
    results = trigger_events(
        organization=organization,
        events=[{"event": "application.created", "payload": {"a": 1}}, {"event": "job.opened"}],
    )
    assert [(r.index, r.status, r.event_type) for r in results] == [
        (0, "created", "application.created"),
        (1, "created", "job.opened"),
    ]
    assert [r.event.delivery_count for r in results] == [2, 1]  # type: ignore[union-attr]
    first = Event.objects.get(pk=results[0].event.pk)  # type: ignore[union-attr]
    assert first.payload == {"a": 1} and first.type == "application.created"
    assert set(first.deliveries.values_list("webhook_id", flat=True)) == {webhook.pk, other.pk}
    second = Event.objects.get(pk=results[1].event.pk)  # type: ignore[union-attr]
    assert second.payload == {} and list(second.deliveries.values_list("webhook_id", flat=True)) == [other.pk]
    assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.PENDING}
    assert Delivery.objects.get(event=first, webhook=webhook).max_attempts == 1 + webhook.retry_attempts


def test_invalid_items_are_their_own_errors_and_the_valid_ones_are_stored(organization, webhook, settings):
    settings.WEBHOOKS_MAX_PAYLOAD_BYTES = 100
    results = trigger_events(
        organization=organization,
        events=[
            {"event": "application.created", "payload": {"ok": 1}},
            {"event": "nope.nothing"},
            "not an object",
            {"event": "application.created", "payload": [1, 2]},
            {"event": "application.created", "colour": "red"},
            {"payload": {}},
            {"event": "application.created", "idempotency_key": "x" * 201},
            {"event": "application.created", "payload": {"big": "x" * 200}},
            {"event": "webhook.test"},
            {"event": "application.created", "payload": {"ok": 2}},
            {"event": "application.created", "payload": {"t": "a\x00b"}},
            {"event": "application.created", "payload": {"ok": 3, "t": "\\u0000 is only text"}},
        ],
    )
    assert [r.status for r in results] == ["created"] + ["error"] * 8 + ["created", "error", "created"]
    assert "NUL" in results[10].errors["payload"][0]  # type: ignore[index]
    errors = [r.errors for r in results]
    assert "event" in errors[1] and "non_field_errors" in errors[2] and "payload" in errors[3]
    assert errors[4] == {"colour": ["Unknown field (accepted: event, idempotency_key, payload)."]}
    assert errors[5] == {"event": ["This field is required."]} and "idempotency_key" in errors[6]
    assert "exceeds 100 bytes" in errors[7]["payload"][0] and "event" in errors[8]
    assert sorted(e.payload["ok"] for e in Event.objects.all()) == [1, 2, 3]
    assert Event.objects.get(payload__ok=3).payload["t"] == "\\u0000 is only text"
    assert Delivery.objects.count() == 3


def test_system_events_come_from_the_platform_only(organization, webhook):
    system = {"event": "integration.unhealthy", "payload": {"integration_id": "x"}}
    refused = trigger_client_events(organization=organization, events=[system, created(1)[0]])
    assert refused[0].status == "error" and "system-only" in refused[0].errors["event"][0]  # type: ignore[index]
    assert refused[1].status == "created" and Event.objects.count() == 1
    assert trigger_events(organization=organization, events=[system])[0].status == "created"


def test_keys_repeat_the_first_event_earlier_or_in_the_same_batch(organization, webhook):
    first = trigger_event(
        organization=organization, event="application.created", payload={"a": 1}, idempotency_key="k1"
    )
    results = trigger_events(
        organization=organization,
        events=[
            {"event": "application.created", "payload": {"a": 1}, "idempotency_key": "k1"},  # earlier: repeat
            {"event": "application.created", "payload": {"a": 2}, "idempotency_key": "k1"},  # earlier: conflict
            {"event": "application.created", "payload": {"b": 1, "c": 2}, "idempotency_key": "k2"},  # new
            {"event": "application.created", "payload": {"c": 2, "b": 1}, "idempotency_key": "k2"},  # same batch
            {"event": "job.opened", "payload": {"b": 1, "c": 2}, "idempotency_key": "k2"},  # same batch, other type
        ],
    )
    assert [r.status for r in results] == ["repeat", "error", "created", "repeat", "error"]
    assert results[0].event.pk == first.pk and results[0].event.delivery_count == 1  # type: ignore[union-attr]
    assert results[0].event.is_repeat  # type: ignore[union-attr]
    assert results[1].errors == {"idempotency_key": [f"Already used for event {first.pk} with a different payload."]}
    assert results[1].conflict.extra["event_id"] == str(first.pk)  # type: ignore[union-attr]
    new = results[2].event
    assert results[3].event.pk == new.pk and results[3].event.delivery_count == 1  # type: ignore[union-attr]
    assert results[4].errors == {"idempotency_key": [f"Already used for event {new.pk} with a different event."]}
    assert Event.objects.count() == 2 and Delivery.objects.count() == 2


def test_a_key_first_used_by_a_conflicting_item_still_compares_with_the_stored_event(organization, webhook):
    first = trigger_event(organization=organization, event="application.created", payload={"a": 1}, idempotency_key="k")
    results = trigger_events(
        organization=organization,
        events=[
            {"event": "application.created", "payload": {"a": 2}, "idempotency_key": "k"},
            {"event": "application.created", "payload": {"a": 1}, "idempotency_key": "k"},
        ],
    )
    assert [r.status for r in results] == ["error", "repeat"]
    assert results[1].event.pk == first.pk  # type: ignore[union-attr]


def test_excluded_webhooks_get_no_delivery(organization, webhook, receiver):
    other = webhook_create(organization=organization, name="Other", url=receiver.url, events=["*"])
    results = trigger_events(organization=organization, events=created(3), exclude_webhook_ids=[webhook.pk])
    assert [r.event.delivery_count for r in results] == [1, 1, 1]  # type: ignore[union-attr]
    assert set(Delivery.objects.values_list("webhook_id", flat=True)) == {other.pk}


@pytest.mark.parametrize("events", [[], [created(1)[0]] * (MAX_BATCH_EVENTS + 1), {"event": "application.created"}])
def test_the_batch_itself_must_be_a_list_of_1_to_1000(organization, webhook, events):
    with pytest.raises(ValidationError):
        trigger_events(organization=organization, events=events)
    assert not Event.objects.exists()


def test_a_rolled_back_caller_stores_and_sends_nothing(organization, webhook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            trigger_events(organization=organization, events=created(3))
            raise RuntimeError("the caller fails")
    assert callbacks == [] and not Event.objects.exists() and not Delivery.objects.exists()


def test_a_batch_requests_one_drain_for_all_its_deliveries(organization, webhook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        trigger_events(organization=organization, events=created(5))
    assert len(callbacks) == 1 and callbacks[0].delivery_count == 5


def test_triggers_in_one_transaction_make_one_drain_request(organization, webhook, django_capture_on_commit_callbacks):
    """Coalesced per savepoint level: a rolled-back savepoint takes exactly its own count."""
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for n in range(3):
            trigger_event(organization=organization, event="application.created", payload={"n": n})
        try:
            with transaction.atomic():
                trigger_event(organization=organization, event="application.created", payload={"n": 3})
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        trigger_event(organization=organization, event="application.created", payload={"n": 4})
    assert [c.delivery_count for c in callbacks] == [4]
    assert Delivery.objects.count() == 4


def test_the_last_callback_of_another_level_is_not_reused(organization, webhook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        with transaction.atomic():
            trigger_event(organization=organization, event="application.created", payload={"n": 0})
        trigger_event(organization=organization, event="application.created", payload={"n": 1})
    assert sorted(c.delivery_count for c in callbacks) == [1, 1]
    assert all(isinstance(c, scheduling._Drain) for c in callbacks)


def test_statements_per_batch_do_not_grow_with_its_size(organization, webhook):
    def statements(size: int, start: int) -> int:
        items = [
            {"event": "application.created", "payload": {"n": start + i}, "idempotency_key": f"q{start + i}"}
            for i in range(size)
        ]
        items[1] = {**items[0]}  # an in-batch repeat
        items[2] = {"event": "nope.nothing"}  # an invalid item
        with CaptureQueriesContext(connection) as queries:
            trigger_events(organization=organization, events=items)
        return len(queries)

    # SQLite inserts in chunks of its 999-parameter limit (about 90 deliveries): sizes below it.
    small, large = statements(5, 0), statements(60, 1000)
    assert small == large
    repeated = statements(60, 1000)  # every key held already: nothing to insert
    assert Event.objects.count() == 3 + 58
    if connection.vendor == "postgresql":
        # The whole batch in one statement, whatever its size, content filters evaluated in it;
        # a batch repeating stored keys reads their events after it, in one more.
        assert large == 1 and statements(MAX_BATCH_EVENTS, 5000) == 1
        assert repeated == 2
    else:
        assert repeated <= large


def test_custom_event_types_cost_one_lookup_per_name_not_per_item(organization, webhook):
    from webhooks.services import event_type_create

    event_type_create(organization=organization, name="custom.a", schema={"type": "object"})
    event_type_create(organization=organization, name="custom.b", schema={"type": "object"})

    def statements(size: int) -> int:
        items = [{"event": f"custom.{'ab'[i % 2]}", "payload": {"n": i}} for i in range(size)]
        with CaptureQueriesContext(connection) as queries:
            results = trigger_events(organization=organization, events=items)
        assert all(r.status == "created" for r in results)
        return len(queries)

    assert statements(2) == statements(40)


def test_one_keyed_trigger_is_one_statement_on_postgresql(organization, webhook):
    """The first trigger of a key: one statement on PostgreSQL for the key, the event, its
    content filters and its deliveries; its repeat: that statement and the read of the
    holding event (kept out of the statement: it would plan a read of every daily partition
    of the events on every keyed trigger). The ORM path elsewhere: a read, the two inserts,
    the webhooks with their filters, and the savepoint around them."""
    bounds = (1, 2) if connection.vendor == "postgresql" else (6, 6)
    for attempt in range(2):  # the first, then the repeat
        with CaptureQueriesContext(connection) as queries:
            event = trigger_event(
                organization=organization, event="application.created", payload={"a": 1}, idempotency_key="one"
            )
        assert len(queries) <= bounds[attempt] and event.delivery_count == 1 and event.is_repeat == (attempt == 1)


# --- the API ------------------------------------------------------------------------------------


def test_the_endpoint_answers_each_item(api_client, webhook):
    api_client.post(
        "/api/events/", {"event": "application.created", "payload": {"id": 1}, "idempotency_key": "a"}, format="json"
    )
    first_id = str(Event.objects.get().pk)
    body = {
        "events": [
            {"event": "application.created", "payload": {"id": 1}, "idempotency_key": "a"},
            {"event": "application.created", "payload": {"id": 2}, "idempotency_key": "a"},
            {"event": "job.opened", "payload": {"id": 3}},
            {"event": "integration.recovered", "payload": {}},
            {"event": "application.created", "payload": {"id": 4}, "idempotency_key": "b"},
            {"event": "application.created", "payload": {"id": 4}, "idempotency_key": "b"},
            7,
        ]
    }
    response = api_client.post(BATCH, body, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "repeat"),
        (1, "error"),
        (2, "created"),
        (3, "error"),
        (4, "created"),
        (5, "repeat"),
        (6, "error"),
    ]
    repeat = {"index": 0, "id": first_id, "event": "application.created", "deliveries": 1, "status": "repeat"}
    assert results[0] == repeat
    assert results[1]["id"] is None and results[1]["deliveries"] == 0
    assert results[1]["errors"] == {"idempotency_key": [f"Already used for event {first_id} with a different payload."]}
    assert results[2]["deliveries"] == 0 and results[2]["id"]  # nobody subscribes to job.opened
    assert "system-only" in results[3]["errors"]["event"][0] and results[3]["event"] == "integration.recovered"
    assert results[5]["id"] == results[4]["id"] and results[4]["deliveries"] == 1
    assert results[6]["event"] is None and "non_field_errors" in results[6]["errors"]
    assert Event.objects.count() == 3 and Delivery.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": [{"event": "application.created"}] * (MAX_BATCH_EVENTS + 1)}, "events"),
        ({"events": []}, "events"),
        ({"events": {"event": "application.created"}}, "events"),
        ({}, "events"),
        ({"events": [{"event": "application.created"}], "atomic": False}, "atomic"),
    ],
)
def test_a_bad_request_is_a_400_and_stores_nothing(api_client, webhook, body, field):
    response = api_client.post(BATCH, body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in field_errors(response)
    assert not Event.objects.exists() and not Delivery.objects.exists()


def test_1000_events_are_accepted(api_client, webhook):
    response = api_client.post(BATCH, {"events": created(MAX_BATCH_EVENTS)}, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED
    assert [r["status"] for r in response.json()["results"]] == ["created"] * MAX_BATCH_EVENTS
    assert Event.objects.count() == MAX_BATCH_EVENTS == Delivery.objects.count()


def test_keys_and_webhooks_belong_to_the_organization(api_client, other_client, organization, webhook):
    body = {"events": [{"event": "application.created", "payload": {"id": 1}, "idempotency_key": "shared"}]}
    mine = api_client.post(BATCH, body, format="json").json()["results"][0]
    theirs = other_client.post(
        BATCH,
        {"events": [{"event": "application.created", "payload": {"id": 2}, "idempotency_key": "shared"}]},
        format="json",
    ).json()["results"][0]
    assert mine["status"] == theirs["status"] == "created" and mine["id"] != theirs["id"]
    assert theirs["deliveries"] == 0  # the other organization has no webhook; ours gets nothing of theirs
    assert Delivery.objects.filter(event_id=theirs["id"]).count() == 0
    stored = Event.objects.get(pk=theirs["id"])
    assert stored.organization_id == other_client.organization.pk and stored.payload == {"id": 2}
    assert Event.objects.get(pk=mine["id"]).organization_id == organization.pk


def test_a_read_only_key_cannot_trigger(read_only_client, webhook):
    response = read_only_client.post(BATCH, {"events": created(1)}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN and not Event.objects.exists()


def test_the_endpoint_takes_a_constant_number_of_queries(api_client, webhook):
    def queries(size: int, start: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = api_client.post(BATCH, {"events": created(size, start)}, format="json")
        assert response.status_code == HTTPStatus.ACCEPTED
        return len(captured)

    queries(1, 1000)  # the key's first use is recorded once
    assert queries(2, 0) == queries(60, 100)  # below SQLite's insert chunks (see above)


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_the_same_keys_store_each_event_once(organization, webhook):
    items = [{"event": "application.created", "payload": {"n": i}, "idempotency_key": f"race-{i}"} for i in range(50)]
    outcomes: list[list] = []
    lock = threading.Lock()

    def send():
        results = trigger_events(organization=organization, events=items)
        with lock:
            outcomes.append(results)

    with Concurrently(send, send, send):
        pass
    assert Event.objects.count() == 50 and Delivery.objects.count() == 50
    stored = {e.idempotency_key: e.pk for e in Event.objects.all()}
    for results in outcomes:
        assert all(r.status in {"created", "repeat"} for r in results)
        assert [r.event.pk for r in results] == [stored[f"race-{i}"] for i in range(50)]  # type: ignore[union-attr]
    statuses = [r.status for results in outcomes for r in results]
    assert statuses.count("created") == 50


def test_created_events_are_the_rows_stored(organization, webhook):
    """The results' events are built positionally (`Model.from_db`): in the model's field order."""
    from webhooks.services.events import _EVENT_FIELDS

    assert _EVENT_FIELDS == tuple(f.attname for f in Event._meta.concrete_fields)
    (result,) = trigger_events(
        organization=organization,
        events=[{"event": "application.created", "payload": {"n": 1}, "idempotency_key": "row"}],
    )
    stored = Event.objects.get(pk=result.event.pk)  # type: ignore[union-attr]
    event = result.event
    assert event is not None and not event._state.adding and event.organization == organization
    for name in _EVENT_FIELDS:
        assert getattr(event, name) == getattr(stored, name), name
