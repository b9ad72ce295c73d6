"""JSON nested deeper than API_MAX_JSON_DEPTH (32) is a clear 400 on every route, and the
services refuse such values from Python too: never a RecursionError or a 500.

A payload nested 400 deep used to raise RecursionError in the event service's NUL check,
and a `config` nested 1,000 deep failed inside the JSON decoder.
"""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError

from integrations.models import Integration
from tests.integrations.factories import IntegrationFactory
from webhooks.models import Event, Webhook
from webhooks.services import trigger_event

pytestmark = pytest.mark.django_db

LIMIT = 32


def nested_text(depth: int, leaf: str = "1") -> str:
    """`depth` levels of objects and arrays around `leaf`, as JSON text (no recursion)."""
    opening, closing = [], []
    for level in range(depth):
        if level % 2:
            opening.append("[")
            closing.append("]")
        else:
            opening.append('{"a":')
            closing.append("}")
    return "".join(opening) + leaf + "".join(reversed(closing))


#: (path, body with a slot that gets a value nested `depth` deep, how many levels the body adds)
ROUTES = [
    ("/api/events/", '{"event": "application.created", "payload": %s}', 1),
    (
        "/api/integrations/",
        '{"name": "x", "provider": "custom", "auth_type": "api_key", "config": %s, "credentials": {"api_key": "k"}}',
        1,
    ),
    ("/api/integrations/webhooks/", '{"name": "x", "url": "https://hooks.example.com/", "events": [%s]}', 2),
    ("/api/api-keys/", '{"name": %s}', 1),
]


@pytest.mark.parametrize("depth", [LIMIT + 1, 400, 1000, 100_000])
@pytest.mark.parametrize(("path", "template", "_levels"), ROUTES)
def test_nesting_past_the_limit_is_a_json_400_and_stores_nothing(api_client, path, template, _levels, depth):
    body = template % nested_text(depth)
    response = api_client.post(path, body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "application/json"
    assert f"more than {LIMIT} levels deep" in response.json()["detail"]
    assert not Event.objects.exists()
    assert not Integration.objects.exists()
    assert not Webhook.objects.exists()


def event_body(depth: int) -> str:
    """An event whose payload nests `depth` levels: the body one more."""
    return '{"event": "application.created", "payload": ' + nested_text(depth) + "}"


def test_a_body_exactly_at_the_limit_is_accepted(api_client):
    # The body is one level, so the payload may nest 31 more.
    body = event_body(LIMIT - 1)
    response = api_client.post("/api/events/", body, content_type="application/json")
    assert response.status_code == HTTPStatus.ACCEPTED, response.content
    assert Event.objects.count() == 1
    one_more = event_body(LIMIT)
    assert (
        api_client.post("/api/events/", one_more, content_type="application/json").status_code == HTTPStatus.BAD_REQUEST
    )
    assert Event.objects.count() == 1


def test_the_limit_is_the_api_max_json_depth_setting(api_client, settings):
    settings.API_MAX_JSON_DEPTH = 4
    body = event_body(4)
    response = api_client.post("/api/events/", body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "more than 4 levels deep" in response.json()["detail"]
    shallow = event_body(3)
    assert api_client.post("/api/events/", shallow, content_type="application/json").status_code == HTTPStatus.ACCEPTED


def test_the_limit_holds_on_updates_too(api_client, organization):
    integration = IntegrationFactory(organization=organization)
    before = Integration.objects.values("config", "updated_at").get(pk=integration.pk)
    body = '{"config": ' + nested_text(1000) + "}"
    response = api_client.patch(f"/api/integrations/{integration.pk}/", body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert Integration.objects.values("config", "updated_at").get(pk=integration.pk) == before


def nested_value(depth: int) -> dict:
    value: object = 1
    for level in range(depth - 1):
        value = [value] if level % 2 else {"a": value}
    return {"a": value}


@pytest.mark.parametrize("depth", [LIMIT + 1, 400, 5000])
def test_trigger_event_from_python_refuses_a_deep_payload(organization, depth):
    payload = nested_value(depth)
    with pytest.raises(ValidationError) as refused:
        trigger_event(organization=organization, event="application.created", payload=payload)
    assert f"more than {LIMIT} levels deep" in str(refused.value)
    assert not Event.objects.exists()


def test_trigger_event_from_python_refuses_a_cyclic_payload(organization):
    payload: dict = {}
    payload["again"] = payload
    with pytest.raises(ValidationError):
        trigger_event(organization=organization, event="application.created", payload=payload)
