"""Tenant isolation over every route: another organization's ids are 404 on every method,
and its objects never appear in a list, count, statistic or log.

The routes are read from /api/schema/, so a route added later (e.g. health checks under
/api/integrations/{id}/...) is covered without editing this file; a route whose path
parameter the fixtures cannot fill, or a parameterized /api/ route missing from the schema,
fails the suite.
"""

from __future__ import annotations

import itertools
import json
from http import HTTPStatus

import pytest
import responses
from django.urls import resolve
from rest_framework.test import APIClient

from integrations.models import Integration
from organizations.models import ApiKey
from tests.api_errors import error_fields, problem
from tests.factories import MembershipFactory, UserFactory
from webhooks.models import Delivery, Event, Webhook, WebhookLog

from .tenants import (
    NON_OBJECT_PARAMETERS,
    PARAMETER,
    api_routes_with_parameters,
    body_text,
    expected_read_status,
    fill,
    make_tenant,
    mock_provider_apis,
    parameter_value,
    schema_operations,
)

pytestmark = pytest.mark.django_db
NOT_FOUND = {"type": "not_found", "title": "Not found", "detail": "Not found.", "errors": {}}

BODIES = {  # plausible bodies, so a 404 is not a validation error in disguise
    "POST": {"name": "x", "code": "c", "state": "s", "success": True, "since": "2000-01-01T00:00:00Z"},
    "PUT": {"name": "x", "provider": "rippling", "auth_type": "api_key", "url": "https://a.test/", "events": ["*"]},
    "PATCH": {"name": "x", "is_active": False},
}


@pytest.fixture
def tenants():
    return make_tenant("acme"), make_tenant("globex")


@pytest.fixture(params=["api_key", "session"])
def acme_client(request, tenants):
    """Acme's writer, as an API key or as a logged-in admin member."""
    acme, _ = tenants
    client = APIClient()
    if request.param == "api_key":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.raw_key}")
    else:
        user = UserFactory()
        MembershipFactory(user=user, organization=acme.organization)
        client.force_login(user)
    return client


def snapshot(tenant):
    """Everything of a tenant that a request could change."""
    org = tenant.organization
    return {
        "integrations": sorted(
            Integration.objects.filter(organization=org).values_list(
                "id", "name", "status", "updated_at", "token_expires_at", "last_sync_at"
            )
        ),
        "credentials": {i.pk: i.credentials for i in Integration.objects.filter(organization=org)},
        "webhooks": sorted(
            Webhook.objects.filter(organization=org).values_list("id", "name", "url", "is_active", "updated_at")
        ),
        "secrets": {w.pk: (w.secret, w.previous_secret) for w in Webhook.objects.filter(organization=org)},
        "keys": sorted(ApiKey.objects.filter(organization=org).values_list("id", "revoked_at")),
        "logs": WebhookLog.objects.filter(organization=org).count(),
        "deliveries": sorted(Delivery.objects.filter(organization=org).values_list("id", "state", "attempts")),
        "events": Event.objects.filter(organization=org).count(),
    }


def foreign_requests(tenants):
    """(method, template, url) with globex's objects in every combination of acme/globex ids,
    at least one of them globex's."""
    acme, globex = tenants
    client = APIClient()
    for method, template, _ in schema_operations(client):
        names = [name for name in PARAMETER.findall(template) if name not in NON_OBJECT_PARAMETERS]
        if not names or names == ["provider"]:
            continue
        for owners in itertools.product((acme, globex), repeat=len(names)):
            if globex not in owners:
                continue
            values = {name: parameter_value(template, name, owner) for name, owner in zip(names, owners, strict=True)}
            values |= {name: parameter_value(template, name, acme) for name in PARAMETER.findall(template)
                       if name in NON_OBJECT_PARAMETERS}  # fmt: skip
            yield method, template, fill(template, values)


def test_other_organizations_ids_are_404_on_every_route_and_method(tenants, acme_client):
    acme, globex = tenants
    before = snapshot(globex), snapshot(acme)
    exercised = set()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        for method, template, url in foreign_requests(tenants):
            body = BODIES.get(method)
            response = acme_client.generic(
                method, url, json.dumps(body) if body else "", content_type="application/json"
            )
            assert response.status_code == HTTPStatus.NOT_FOUND, (method, url, body_text(response))
            assert problem(response) == NOT_FOUND, (method, url)
            exercised.add(resolve(url).route)
        assert len(outbound.calls) == 0, "a request for another organization's object went out"
    assert (snapshot(globex), snapshot(acme)) == before
    assert exercised, "no route with an id was exercised"


def test_every_parameterized_api_route_is_in_the_schema_and_exercised(tenants):
    """A route with an id that the schema (and so the matrix) does not cover fails here."""
    acme, _ = tenants
    exercised = set()
    for method, template, _ in schema_operations(APIClient()):
        names = PARAMETER.findall(template)
        if names:
            values = {name: parameter_value(template, name, acme) for name in names}
            exercised.add(resolve(fill(template, values)).route)
    missing = api_routes_with_parameters() - exercised
    assert not missing, f"parameterized /api/ routes not covered by the isolation matrix: {sorted(missing)}"


def test_nothing_of_another_organization_in_any_read(tenants, acme_client):
    """Every GET (lists, provider lists, stats, logs, catalogues) with acme's own ids."""
    acme, globex = tenants
    reads = 0
    for method, template, _ in schema_operations(APIClient()):
        if method != "GET":
            continue
        values = {name: parameter_value(template, name, acme) for name in PARAMETER.findall(template)}
        url = fill(template, values)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
            mock_provider_apis(outbound)
            response = acme_client.get(url)
        if template.endswith("/oauth/authorize/"):
            assert response.status_code == HTTPStatus.OK
        else:
            assert response.status_code == expected_read_status(template), (url, body_text(response))
        text = body_text(response)
        for identifier in globex.identifiers():
            assert identifier not in text, (url, identifier)
        reads += 1
    assert reads >= 10


def test_counts_and_statistics_only_count_own_objects(tenants, acme_client):
    acme, _ = tenants
    assert acme_client.get("/api/integrations/").json()["count"] == 2
    assert acme_client.get("/api/integrations/webhooks/").json()["count"] == 1
    assert acme_client.get("/api/api-keys/").json()["count"] == 1
    assert acme_client.get(f"/api/integrations/provider/{acme.integration.provider}/").json()["count"] == 1
    stats = acme_client.get(f"/api/integrations/webhooks/{acme.webhook.pk}/stats/").json()
    assert stats["attempts"] == 1
    logs = acme_client.get(f"/api/integrations/webhooks/{acme.webhook.pk}/logs/").json()
    assert [row["id"] for row in logs["results"]] == [str(acme.log.pk)]


def test_an_event_is_only_delivered_to_its_own_organizations_webhooks(tenants, acme_client):
    _, globex = tenants
    response = acme_client.post("/api/events/", {"event": "job.created", "payload": {}}, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json()["deliveries"] == 1
    assert not Delivery.objects.filter(webhook=globex.webhook, event_id=response.json()["id"]).exists()


def test_a_webhook_cannot_be_tied_to_another_organizations_integration(tenants, acme_client):
    acme, globex = tenants
    body = {"name": "x", "url": "https://a.test/", "events": ["*"], "integration": str(globex.integration.pk)}
    response = acme_client.post("/api/integrations/webhooks/", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "integration" in error_fields(response)
    response = acme_client.patch(
        f"/api/integrations/webhooks/{acme.webhook.pk}/", {"integration": str(globex.integration.pk)}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    acme.webhook.refresh_from_db()
    assert acme.webhook.integration_id == acme.integration.pk


def test_another_organizations_oauth_state_cannot_complete_our_integration(tenants, acme_client):
    """A state issued for globex's integration, sent to acme's: 400, nothing consumed or stored."""
    acme, globex = tenants
    globex_client = APIClient()
    globex_client.credentials(HTTP_AUTHORIZATION=f"Bearer {globex.raw_key}")
    state = globex_client.get(f"/api/integrations/{globex.oauth_integration.pk}/oauth/authorize/").json()["state"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        response = acme_client.post(
            f"/api/integrations/{acme.oauth_integration.pk}/oauth/callback/",
            {"code": "c", "state": state},
            format="json",
        )
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert len(outbound.calls) == 0
    from integrations.models import OAuthState

    assert OAuthState.objects.get(integration=globex.oauth_integration).used_at is None
