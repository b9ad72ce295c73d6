"""The trigger endpoints' shortcuts give exactly what the code they skip gives.

`POST /api/events/` skips `EventTriggerSerializer` for ordinary bodies and the batch skips
`EventBatchSerializer`'s list field; any other body goes through the serializer. Each case
here runs both: the shortcut either declines (None) or returns the serializer's own result.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest

from tests.api_errors import field_errors
from webhooks.api.serializers import EventBatchSerializer, EventTriggerSerializer
from webhooks.api.views import _plain_batch_events, _plain_trigger_fields
from webhooks.services import MAX_BATCH_EVENTS

TRIGGER_BODIES = [
    {"event": "application.created"},
    {"event": "application.created", "payload": {"a": [1, {"b": None}]}},
    {"event": "application.created", "payload": {}, "idempotency_key": "k-1"},
    {"event": "application.created", "idempotency_key": None},
    {"event": " application.created"},  # trimmed by the serializer
    {"event": "application.created\n"},
    {"event": ""},
    {"event": "   "},
    {"event": None},
    {"event": 12},
    {"event": True},
    {"event": ["application.created"]},
    {"event": "x" * 100},
    {"event": "x" * 101},
    {"event": "évènement"},
    {"event": "a\x00b"},
    {"event": "a\ud800"},
    {"payload": {}},
    {"event": "application.created", "payload": None},
    {"event": "application.created", "payload": []},
    {"event": "application.created", "payload": "text"},
    {"event": "application.created", "idempotency_key": ""},
    {"event": "application.created", "idempotency_key": " k"},
    {"event": "application.created", "idempotency_key": "k" * 200},
    {"event": "application.created", "idempotency_key": "k" * 201},
    {"event": "application.created", "idempotency_key": 7},
    {"event": "application.created", "idempotency_key": "clé"},
    {"event": "application.created", "extra": 1},
    {"event": "application.created", "id": "x"},
    [],
    "text",
    None,
]


@pytest.mark.parametrize("body", TRIGGER_BODIES, ids=repr)
def test_the_trigger_shortcut_returns_what_the_serializer_validates(body):
    fast = _plain_trigger_fields(body)
    serializer = EventTriggerSerializer(data=body)
    if fast is None:
        return
    assert serializer.is_valid(), serializer.errors
    assert fast == dict(serializer.validated_data)


def test_the_trigger_shortcut_takes_the_ordinary_bodies():
    assert _plain_trigger_fields({"event": "job.opened", "payload": {"a": 1}, "idempotency_key": "k"}) is not None
    expected = {"event": "job.opened", "payload": {}, "idempotency_key": None}
    assert _plain_trigger_fields({"event": "job.opened"}) == expected


BATCH_BODIES = [
    {"events": [{"event": "job.opened"}]},
    {"events": [{"event": "job.opened"}] * MAX_BATCH_EVENTS},
    {"events": [{"event": "job.opened"}] * (MAX_BATCH_EVENTS + 1)},
    {"events": []},
    {"events": [None]},
    {"events": [{"event": "job.opened"}, None]},
    {"events": [1, "x", [], {}]},
    {"events": {"0": {"event": "job.opened"}}},
    {"events": "job.opened"},
    {"events": None},
    {"events": [{"event": "job.opened"}], "extra": 1},
    {},
    [],
    None,
]


@pytest.mark.parametrize("body", BATCH_BODIES, ids=lambda body: repr(body)[:60])
def test_the_batch_shortcut_returns_what_the_serializer_validates(body):
    fast = _plain_batch_events(body)
    serializer = EventBatchSerializer(data=body)
    if fast is None:
        return
    assert serializer.is_valid(), serializer.errors
    assert fast == serializer.validated_data["events"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"event": " job.opened ", "idempotency_key": " "}, {"idempotency_key": ["This field may not be blank."]}),
        ({"event": "job.opened", "payload": None}, {"payload": ["This field may not be null."]}),
        ({"event": "x" * 101}, {"event": ["Ensure this field has no more than 100 characters."]}),
    ],
)
def test_bodies_the_shortcut_declines_are_the_serializers_400(api_client, body, errors):
    response = api_client.post("/api/events/", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field_errors(response) == errors


@pytest.mark.django_db
def test_a_null_item_in_a_batch_is_still_the_serializers_400(api_client):
    response = api_client.post("/api/events/batch/", {"events": [{"event": "job.opened"}, None]}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert list(field_errors(response)) == ["events.1"]
