"""The OpenAPI schema reads like documentation (common/api/schema.py): one tag per app, each
described once; a summary per operation instead of the viewset docstring on every one."""

from http import HTTPStatus

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anon_client):
    response = anon_client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == HTTPStatus.OK
    return response.json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def expected_tag(path: str) -> str:
    if path in {"/api/events/", "/api/integrations/webhooks/events/", "/api/data-subjects/erase/"}:
        return "events"
    if path.startswith("/api/integrations/webhooks/"):
        return "webhooks"
    if path.startswith("/api/integrations/{id}/health/"):
        return "health"
    if path.startswith(("/api/integrations/", "/api/integration-issues/")):
        return "integrations"
    return path.split("/")[2]  # organization, api-keys


def test_every_operation_has_one_tag_of_its_app(schema):
    declared = [tag["name"] for tag in schema["tags"]]
    assert declared == [tag["name"] for tag in settings.SPECTACULAR_SETTINGS["TAGS"]]
    assert {"organization", "api-keys", "integrations", "health", "webhooks", "events"} <= set(declared)
    assert all(tag["description"] for tag in schema["tags"])
    for path, method, operation in operations(schema):
        assert operation["tags"] == [expected_tag(path)], (method, path)
        assert operation["tags"][0] in declared, (method, path)


def test_webhooks_are_not_tagged_integrations(schema):
    tagged = {path for path, _, operation in operations(schema) if operation["tags"] == ["webhooks"]}
    assert "/api/integrations/webhooks/" in tagged
    assert "/api/integrations/webhooks/{id}/logs/" in tagged


def test_every_operation_has_a_summary_of_its_own(schema):
    summaries = [operation.get("summary", "") for _, _, operation in operations(schema)]
    assert all(summaries), [(m, p) for p, m, o in operations(schema) if not o.get("summary")]
    assert len(set(summaries)) == len(summaries), sorted(s for s in summaries if summaries.count(s) > 1)
    by_operation = {(path, method): operation["summary"] for path, method, operation in operations(schema)}
    assert by_operation[("/api/integrations/webhooks/", "get")] == "List webhooks"
    assert by_operation[("/api/integrations/{id}/", "patch")] == "Update an integration (only the fields sent)"
    assert by_operation[("/api/api-keys/{id}/", "delete")] == "Revoke an API key"


def test_no_description_is_repeated_across_operations(schema):
    """Every CRUD operation of a viewset used to carry the viewset's docstring."""
    descriptions = [operation.get("description", "") for _, _, operation in operations(schema)]
    repeated = {text for text in descriptions if text and descriptions.count(text) > 1}
    assert not repeated
    tag_texts = " ".join(tag["description"] for tag in schema["tags"])
    assert "returned only by create and rotate-secret" in tag_texts  # the webhook viewset's docstring


def test_operations_reading_a_body_document_413(schema):
    for path, method, operation in operations(schema):
        if "requestBody" in operation:
            assert "413" in operation["responses"], (method, path)
