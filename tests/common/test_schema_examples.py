"""The request examples in /api/schema/ work: each is sent, as written, to its endpoint on
real objects and accepted; event examples use types of the catalogue.

Every operation with a body has at least one example. One needs a value that only exists
during a flow (the OAuth callback's `state`): its example is checked to be well-formed (the
endpoint refuses the state, nothing else)."""

from http import HTTPStatus

import pytest
from django.db import transaction

from integrations.services import integration_create
from webhooks.events import ALL_EVENTS, TEST_EVENT, is_known_event
from webhooks.services import event_type_create, webhook_create

pytestmark = pytest.mark.django_db

#: examples that need a live value, with the status and message their endpoint gives
NEEDS_A_LIVE_VALUE = {("/api/integrations/{id}/oauth/callback/", "post"): (HTTPStatus.BAD_REQUEST, "state")}
#: hiring operations call a connected calendar or chat provider: sent to the (BambooHR)
#: integration, the body passes validation and only the provider is refused (their own
#: tests, tests/integrations/hiring/, send the same shapes to mocked providers)
NEEDS_A_PROVIDER = {
    ("/api/integrations/{id}/calendar/free-busy/", "post"): "not a calendar provider",
    ("/api/integrations/{id}/calendar/interviews/{interview_id}/", "put"): "not a calendar provider",
    ("/api/integrations/{id}/messages/", "post"): "not a messaging provider",
}


@pytest.fixture
def schema(anon_client):
    return anon_client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


#: its body is the provider's, forwarded as bytes (any content type): no example of ours applies
PASS_THROUGH = "/api/integrations/{id}/proxy/{path}"


def request_examples(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if "requestBody" not in operation or path == PASS_THROUGH:
                continue
            examples = operation["requestBody"]["content"]["application/json"].get("examples", {})
            yield path, method, examples


@pytest.fixture
def objects(organization):
    """One of each object the examples act on, named so no example collides with them."""
    integration = integration_create(
        organization=organization,
        name="example target",
        provider="bamboohr",
        auth_type="api_key",
        config={"company_domain": "acme"},
        credentials={"api_key": "k"},
    )
    webhook = webhook_create(
        organization=organization, name="example hook", url="https://hooks.example.com/in", events=["*"]
    )
    event_type = event_type_create(organization=organization, name="custom.example.target", schema={"type": "object"})
    return {"integrations": integration, "webhooks": webhook, "event_type": event_type}


def fill(path: str, objects) -> str:
    if "{" not in path:
        return path
    if path.startswith("/api/integrations/webhooks/event-types/"):
        return path.replace("{name}", objects["event_type"].name)
    kind = "webhooks" if path.startswith("/api/integrations/webhooks/") else "integrations"
    path = path.replace("{interview_id}", "int-1042")
    assert path.count("{") == 1 and "{id}" in path, f"{path}: teach fill() its parameters"
    return path.replace("{id}", str(objects[kind].pk))


def test_every_operation_with_a_body_has_an_example(schema):
    missing = [(method, path) for path, method, examples in request_examples(schema) if not examples]
    assert not missing


def test_event_examples_use_types_of_the_catalogue(schema):
    events = [
        item["event"]
        for path, _, examples in request_examples(schema)
        if path.startswith("/api/events/")
        for example in examples.values()
        for item in example["value"].get("events", [example["value"]])  # the batch endpoint: each item
    ]
    assert events
    for event in events:
        assert is_known_event(event) and event not in {TEST_EVENT, ALL_EVENTS}, event
        assert not event.startswith(("integration.", "webhook.")), f"{event} is emitted by the system only"


def test_every_example_is_accepted_by_its_endpoint(schema, api_client, objects):
    tried = 0
    for path, method, examples in request_examples(schema):
        for name, example in examples.items():
            with transaction.atomic():
                response = getattr(api_client, method)(fill(path, objects), example["value"], format="json")
                transaction.set_rollback(True)
            tried += 1
            if (path, method) in NEEDS_A_LIVE_VALUE:
                status, field = NEEDS_A_LIVE_VALUE[(path, method)]
                assert response.status_code == status, (method, path, name, response.content)
                assert field in response.content.decode().lower(), (method, path, name, response.content)
                continue
            if (path, method) in NEEDS_A_PROVIDER:
                assert response.status_code == HTTPStatus.BAD_REQUEST, (method, path, name, response.content)
                assert response.json()["errors"] == {}, (method, path, name, response.content)
                assert NEEDS_A_PROVIDER[(path, method)] in response.json()["detail"], (method, path, name)
                continue
            assert HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES, (
                method,
                path,
                name,
                response.content,
            )
    assert tried >= 15
