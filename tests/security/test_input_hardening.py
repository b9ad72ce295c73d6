"""Bad input the database would refuse: a 4xx, nothing stored.

NUL, lone surrogates, over-long values and malformed keys were each a 500 on PostgreSQL
(and, on SQLite, data stored that PostgreSQL would refuse) until the fuzzer found them.
"""

import json
from http import HTTPStatus

import pytest

from integrations.models import Integration
from tests.api_errors import error_detail, error_fields
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.integrations.factories import IntegrationFactory
from webhooks.models import Event, Webhook
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

NUL = "a\u0000b"
SURROGATE = "a\ud800b"


def _post(client, path, body, method="post"):
    # json.dumps spells both as \u escapes, exactly as a client would send them.
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("text", [NUL, SURROGATE])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/integrations/",
            {"name": "{}", "provider": "rippling", "auth_type": "api_key", "credentials": {"api_key": "k"}},
        ),
        (
            "/api/integrations/",
            {
                "name": "x",
                "provider": "custom",
                "auth_type": "api_key",
                "config": {"{}": "v"},
                "credentials": {"api_key": "k"},
            },
        ),
        ("/api/integrations/webhooks/", {"name": "{}", "url": "https://93.184.216.34/", "events": ["*"]}),
        (
            "/api/integrations/webhooks/",
            {"name": "x", "url": "https://93.184.216.34/", "events": ["*"], "headers": {"X-Tag": "{}"}},
        ),
        ("/api/events/", {"event": "job.created", "payload": {"note": "{}"}}),
        ("/api/events/", {"event": "job.created", "payload": {"{}": 1}}),
        ("/api/api-keys/", {"name": "{}"}),
    ],
)
def test_nul_and_lone_surrogates_are_400_and_store_nothing(api_client, path, body, text):
    """`\\u0000` anywhere in a JSON body was a 500 on PostgreSQL (text and jsonb refuse it)."""
    body = json.loads(json.dumps(body).replace("{}", "PLACEHOLDER"))

    def fill(value):
        if isinstance(value, dict):
            return {fill(k): fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return text if value == "PLACEHOLDER" else value

    before = (Integration.objects.count(), Webhook.objects.count(), Event.objects.count())
    response = _post(api_client, path, fill(body))
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert error_detail(response)
    assert (Integration.objects.count(), Webhook.objects.count(), Event.objects.count()) == before


def test_nul_in_an_update_is_400_and_changes_nothing(api_client, organization):
    integration = IntegrationFactory(organization=organization, name="kept")
    response = _post(api_client, f"/api/integrations/{integration.pk}/", {"name": NUL}, method="patch")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    integration.refresh_from_db()
    assert integration.name == "kept"


def test_integration_name_longer_than_the_column_is_400(api_client, organization):
    """The serializer dropped the name field's validators (max length and NUL included)."""
    body = {"name": "n" * 201, "provider": "rippling", "auth_type": "api_key", "credentials": {"api_key": "k"}}
    response = _post(api_client, "/api/integrations/", body)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "name" in error_fields(response)
    assert not Integration.objects.exists()
    integration = IntegrationFactory(organization=organization, name="kept")
    response = _post(api_client, f"/api/integrations/{integration.pk}/", {"name": "n" * 201}, method="patch")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    integration.refresh_from_db()
    assert integration.name == "kept"


def test_webhook_header_value_with_nul_is_refused_on_update(api_client, organization):
    webhook = webhook_create(organization=organization, name="w", url="https://93.184.216.34/", events=["*"])
    response = _post(api_client, f"/api/integrations/webhooks/{webhook.pk}/", {"headers": {"X-A": NUL}}, method="patch")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    webhook.refresh_from_db()
    assert webhook.headers == {}


@pytest.mark.parametrize("key", ["ik_a\x00b_secret", "ik_DEADBEEF_secret", "ik_deadbeef0_secret", "ik_dead beef_x"])
def test_malformed_key_prefix_is_401_not_a_database_error(anon_client, key):
    """A NUL in the key's prefix reached the prefix lookup: a 500 on PostgreSQL."""
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = anon_client.get("/api/organization/")
    assert response.status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.parametrize("slug", ["mi\x00ne", "mine' OR 1=1", "x" * 300])
def test_malformed_organization_header_is_403(client, slug):
    user = UserFactory()
    MembershipFactory(user=user, organization=OrganizationFactory(slug="mine"))
    client.force_login(user)
    response = client.get("/api/organization/", headers={"X-Organization": slug})
    assert response.status_code == HTTPStatus.FORBIDDEN
