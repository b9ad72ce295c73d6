"""Event contracts: catalogue schemas, payload validation, custom event types."""

from __future__ import annotations

import copy
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator

from tests.api_errors import field_errors
from webhooks import events as catalogue
from webhooks.models import Delivery, Event, EventType
from webhooks.schemas import (
    CATALOGUE_EXAMPLES,
    MAX_SCHEMA_BYTES,
    sensitive_paths,
    sensitive_values_at,
    subject_paths,
    validate_payload,
    values_at,
)
from webhooks.services import event_type_create, trigger_event, webhook_create

pytestmark = pytest.mark.django_db
CATALOGUE = "/api/integrations/webhooks/events/"
TYPES = "/api/integrations/webhooks/event-types/"
ASSESSMENT = {
    "type": "object",
    "required": ["candidate", "score"],
    "properties": {
        "candidate": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string", "x-subject": "candidate_id"},
                "email": {"type": "string", "x-subject": "email", "x-sensitive": True},
            },
        },
        "score": {"type": "integer", "x-sensitive": True},
    },
}


def test_every_catalogue_schema_is_a_valid_2020_12_schema_and_its_example_validates():
    definitions = catalogue.event_definitions()
    assert set(CATALOGUE_EXAMPLES) <= set(definitions)
    for name, definition in definitions.items():
        Draft202012Validator.check_schema(definition.schema)  # the metaschema
        assert Draft202012Validator.META_SCHEMA["$id"].startswith(definition.schema["$schema"].rstrip("schema"))
        assert definition.version >= 1
        validate_payload(definition.schema, definition.example)  # raises on a mismatch
        assert Draft202012Validator(definition.schema).is_valid(definition.example), name


def test_examples_carry_what_a_hiring_platform_sends():
    seen: set[str] = set()
    for name, example in CATALOGUE_EXAMPLES.items():
        seen |= {
            key for key in ("application", "candidate", "job", "interview", "offer") if "id" in example.get(key, {})
        }
        assert "occurred_at" in example, name
    assert seen == {"application", "candidate", "job", "interview", "offer"}
    stage_changed = CATALOGUE_EXAMPLES["application.stage_changed"]
    assert stage_changed["to_stage"]["id"] and stage_changed["application"]["stage"]["id"]
    assert CATALOGUE_EXAMPLES["interview.scheduled"]["interview"]["starts_at"].endswith("Z")


def test_candidate_schemas_declare_subject_and_sensitive_paths():
    schema = catalogue.event_definitions()["application.created"].schema
    assert (("candidate", "id"), "candidate_id") in subject_paths(schema)
    assert (("candidate", "email"), "email") in subject_paths(schema)
    assert ("candidate", "email") in sensitive_paths(schema)
    assert ("candidate", "id") not in sensitive_paths(schema)


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"candidate": {"email": "ada@example.com"}}, "payload.candidate.id"),
        ({"candidate": {"id": ["x"]}}, "payload.candidate.id"),
        ({"application": {"id": "a", "stage": {"name": "x"}}}, "payload.application.stage.id"),
        ({"occurred_at": "yesterday"}, "payload.occurred_at"),
        ({"candidate": {"id": 1, "email": "not an email"}}, "payload.candidate.email"),
    ],
)
def test_trigger_event_refuses_an_invalid_payload_naming_the_path_and_stores_nothing(
    organization, receiver, payload, path
):
    webhook_create(organization=organization, name="ATS", url=receiver.url, events=["*"])
    with pytest.raises(ValidationError) as caught:
        trigger_event(organization=organization, event="application.created", payload=payload)
    assert path in caught.value.message_dict
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0


def test_post_events_answers_400_naming_the_path_and_stores_nothing(api_client, receiver):
    webhook_create(organization=api_client.organization, name="ATS", url=receiver.url, events=["*"])
    bad = copy.deepcopy(CATALOGUE_EXAMPLES["interview.scheduled"])
    del bad["candidate"]["id"]
    bad["interview"]["interviewer_ids"][1] = {"no": "id"}
    response = api_client.post("/api/events/", {"event": "interview.scheduled", "payload": bad}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    fields = set(field_errors(response))
    assert fields & {"payload.candidate.id", "payload.interview.interviewer_ids[1]"}, response.json()
    assert any(path in response.json()["detail"] for path in fields)
    assert Event.objects.count() == 0 and Delivery.objects.count() == 0
    good = {"event": "interview.scheduled", "payload": CATALOGUE_EXAMPLES["interview.scheduled"]}
    assert api_client.post("/api/events/", good, format="json").status_code == HTTPStatus.ACCEPTED


def test_register_event_keeps_working_and_takes_a_schema(organization, monkeypatch):
    monkeypatch.setattr(catalogue, "_catalogue", dict(catalogue._catalogue))
    catalogue.register_event("integration.plain", "no schema")
    schema = {"type": "object", "required": ["integration_id"], "properties": {"integration_id": {"type": "string"}}}
    catalogue.register_event(
        "integration.typed", "typed", schema=schema, version=2, example={"integration_id": "i"}, deprecated=True
    )
    typed = catalogue.event_definitions()["integration.typed"]
    assert typed.version == 2 and typed.deprecated and typed.schema["$schema"].endswith("2020-12/schema")
    trigger_event(organization=organization, event="integration.plain", payload={"anything": 1})
    with pytest.raises(ValidationError) as caught:
        trigger_event(organization=organization, event="integration.typed", payload={})
    assert "payload.integration_id" in caught.value.message_dict
    with pytest.raises(ValidationError):
        catalogue.register_event("integration.bad", "bad example", schema=schema, example={})
    with pytest.raises(ValueError, match="custom"):
        catalogue.register_event("custom.mine", "not the catalogue's")


def test_the_catalogue_endpoint_serves_schemas_versions_examples(api_client, other_client):
    event_type_create(organization=other_client.organization, name="custom.theirs", schema=ASSESSMENT)
    event_type_create(organization=api_client.organization, name="custom.ours", schema=ASSESSMENT, deprecated=True)
    response = api_client.get(CATALOGUE)
    assert response.status_code == HTTPStatus.OK
    entries = {entry["event"]: entry for entry in response.json()}
    created = entries["application.created"]
    assert created["version"] == 1 and created["example"] == CATALOGUE_EXAMPLES["application.created"]
    assert created["schema"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert created["custom"] is False and created["deprecated"] is False
    assert entries["custom.ours"]["custom"] is True and entries["custom.ours"]["deprecated"] is True
    assert "custom.theirs" not in entries


def test_catalogue_query_count(api_client, django_assert_max_num_queries):
    for index in range(5):
        event_type_create(organization=api_client.organization, name=f"custom.e{index}", schema=ASSESSMENT)
    with django_assert_max_num_queries(4):  # key lookup, its touch, the custom types
        assert len(api_client.get(CATALOGUE).json()) > 20


def test_event_types_api_create_list_patch_delete(api_client):
    body = {
        "name": "custom.assessment.completed",
        "schema": ASSESSMENT,
        "example": {"candidate": {"id": "c"}, "score": 3},
    }
    response = api_client.post(TYPES, body, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["version"] == 1
    assert [row["name"] for row in api_client.get(TYPES).json()["results"]] == ["custom.assessment.completed"]
    detail = f"{TYPES}custom.assessment.completed/"
    response = api_client.patch(detail, {"deprecated": True, "version": 2}, format="json")
    assert response.status_code == HTTPStatus.OK and response.json()["deprecated"] is True
    assert api_client.post(TYPES, body, format="json").status_code == HTTPStatus.CONFLICT
    assert api_client.delete(detail).status_code == HTTPStatus.NO_CONTENT
    assert not EventType.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "application.created"}, "name"),
        ({"name": "webhook.mine"}, "name"),
        ({"name": "custom."}, "name"),
        ({"schema": {"type": "object", "properties": {"a": {"type": "nope"}}}}, "schema"),
        ({"schema": {"type": "array"}}, "schema"),
        ({"schema": {"type": "object", "$ref": "https://example.com/s.json"}}, "schema"),
        ({"schema": {"type": "object", "properties": {"a": {"x-subject": "ssn"}}}}, "schema"),
        ({"schema": {"type": "object", "description": "x" * MAX_SCHEMA_BYTES}}, "schema"),
        ({"example": {"score": 1}}, "example.candidate"),
    ],
)
def test_event_types_api_refuses_bad_names_and_schemas(api_client, change, field):
    body = {"name": "custom.ok", "schema": ASSESSMENT, **change}
    response = api_client.post(TYPES, body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    assert any(name == field or name.startswith(f"{field}.") for name in field_errors(response)), response.json()
    assert not EventType.objects.exists()


def test_custom_types_belong_to_their_organization(api_client, other_client, receiver):
    event_type_create(organization=api_client.organization, name="custom.ours", schema=ASSESSMENT)
    assert other_client.get(f"{TYPES}custom.ours/").status_code == HTTPStatus.NOT_FOUND
    assert other_client.patch(f"{TYPES}custom.ours/", {"deprecated": True}, format="json").status_code == 404
    assert other_client.delete(f"{TYPES}custom.ours/").status_code == HTTPStatus.NOT_FOUND
    assert other_client.get(TYPES).json()["results"] == []
    hook = {"name": "h", "url": receiver.url, "events": ["custom.ours"]}
    assert other_client.post("/api/integrations/webhooks/", hook, format="json").status_code == 400
    assert api_client.post("/api/integrations/webhooks/", hook, format="json").status_code == HTTPStatus.CREATED
    event = {"event": "custom.ours", "payload": {"candidate": {"id": "c1"}, "score": 5}}
    assert other_client.post("/api/events/", event, format="json").status_code == HTTPStatus.BAD_REQUEST
    response = api_client.post("/api/events/", event, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED and response.json()["deliveries"] == 1
    bad = {"event": "custom.ours", "payload": {"candidate": {"id": "c1"}, "score": "high"}}
    response = api_client.post("/api/events/", bad, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "payload.score" in set(field_errors(response))


def test_deprecated_types_are_flagged_and_still_delivered(api_client, receiver):
    event_type_create(organization=api_client.organization, name="custom.old", schema=ASSESSMENT, deprecated=True)
    webhook_create(organization=api_client.organization, name="h", url=receiver.url, events=["custom.old"])
    event = trigger_event(
        organization=api_client.organization, event="custom.old", payload={"candidate": {"id": "c"}, "score": 1}
    )
    assert event.delivery_count == 1
    entries = {entry["event"]: entry for entry in api_client.get(CATALOGUE).json()}
    assert entries["custom.old"]["deprecated"] is True


PAYLOAD = {
    "candidate": {"email": "ada@example.com", "phone": 4412345, "flag": True, "short": "ab"},
    "notes": [{"text": "first note"}, {"text": "second note"}, "not an object"],
    "*": {"text": "a key named *"},
    "list": ["x", {"text": "in a list"}],
    "empty": None,
}
PATHS = [
    ("candidate", "email"),
    ("candidate", "phone"),
    ("candidate", "flag"),
    ("candidate", "short"),
    ("candidate", "missing"),
    ("candidate", "email", "deeper"),
    ("notes", "*", "text"),
    ("list", "text"),
    ("*", "text"),
    ("empty", "x"),
    ("missing",),
]


@pytest.mark.parametrize("path", PATHS)
def test_sensitive_values_at_finds_what_values_at_walks_path_by_path(path):
    expected = sorted(
        {
            str(value)
            for value in values_at(PAYLOAD, path)
            if isinstance(value, str | int | float) and not isinstance(value, bool) and len(str(value)) >= 3
        },
        key=len,
        reverse=True,
    )
    assert sensitive_values_at([path], PAYLOAD) == expected


def test_sensitive_values_at_of_every_path_at_once():
    assert sensitive_values_at(PATHS, PAYLOAD) == [
        "ada@example.com",
        "a key named *",
        "second note",
        "first note",
        "4412345",
    ]
    assert sensitive_values_at([()], "the whole payload") == ["the whole payload"]
    assert sensitive_values_at(PATHS, ["not", "an", "object"]) == []
