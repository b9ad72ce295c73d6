import logging
from http import HTTPStatus

import pytest

from integrations.models import Integration
from integrations.providers import PROVIDERS
from tests.api_errors import error_fields, field_errors
from tests.integrations.conftest import SENTINEL
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory
from tests.integrations.grants.keys import rsa_pem

pytestmark = pytest.mark.django_db

URL = "/api/integrations/"


def detail(integration) -> str:
    return f"{URL}{integration.pk}/"


def bamboo_payload(**overrides):
    payload = {
        "name": "BambooHR",
        "provider": "bamboohr",
        "auth_type": "api_key",
        "config": {"company_domain": "acme"},
        "credentials": {"api_key": SENTINEL},
    }
    payload.update(overrides)
    return payload


# --- create ---------------------------------------------------------------------------


def test_create_api_key_integration_starts_active_and_hides_credentials(api_client, caplog):
    caplog.set_level(logging.DEBUG)
    response = api_client.post(URL, bamboo_payload(), format="json")
    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["status"] == "active"
    assert body["health_status"] == "unknown"
    assert body["credential_fields"] == ["api_key"]
    assert "credentials" not in body
    assert SENTINEL not in response.content.decode()
    integration = Integration.objects.get(pk=body["id"])
    assert integration.organization == api_client.organization
    assert integration.credentials == {"api_key": SENTINEL}
    assert SENTINEL not in caplog.text
    assert str(integration.pk) in caplog.text  # the create was logged, without the secret


def test_create_oauth_integration_starts_pending_with_default_config(api_client):
    response = api_client.post(
        URL, {"name": "Outlook", "provider": "microsoft_outlook", "auth_type": "oauth2"}, format="json"
    )
    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["config"] == {"tenant": "common"}
    assert body["credential_fields"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (bamboo_payload(provider="myspace"), "provider"),
        (bamboo_payload(auth_type="saml"), "auth_type"),
        (bamboo_payload(auth_type="password"), "auth_type"),
        (bamboo_payload(config={}), "config"),
        (bamboo_payload(config={"company_domain": "acme", "colour": "red"}), "config"),
        (bamboo_payload(config={"company_domain": "evil.com/x?"}), "config"),
        (bamboo_payload(config=["not", "an", "object"]), "config"),
        (bamboo_payload(credentials={}), "credentials"),
        (bamboo_payload(credentials={"api_key": 42}), "credentials"),
        (bamboo_payload(credentials="just-a-string"), "credentials"),
        (bamboo_payload(name=""), "name"),
        ({"provider": "bamboohr"}, "name"),
        (
            {
                "name": "jwt",
                "provider": "docusign",
                "auth_type": "jwt",
                "config": {"client_id": "c", "user_id": "u"},
                "credentials": {"private_key": "not pem"},
            },
            "credentials",
        ),
        ({"name": "jwt", "provider": "docusign", "auth_type": "jwt", "credentials": {}}, "config"),
        ({"name": "saml", "provider": "custom", "auth_type": "saml", "credentials": {"entity_id": "x"}}, "config"),
        ({"name": "custom", "provider": "custom", "auth_type": "oauth2", "config": {}}, "config"),
        ({"name": "custom", "provider": "custom", "auth_type": "api_key", "credentials": {}}, "credentials"),
        (
            {
                "name": "c",
                "provider": "custom",
                "auth_type": "oauth2",
                "config": {"authorization_url": "javascript:alert(1)", "token_url": "https://x/t", "client_id": "c"},
            },
            "config",
        ),
    ],
)
def test_invalid_create_is_400_with_field_errors_and_creates_nothing(api_client, payload, field):
    response = api_client.post(URL, payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in error_fields(response), response.json()
    assert SENTINEL not in response.content.decode()
    assert not Integration.objects.exists()


def test_field_errors_name_the_config_key(api_client):
    response = api_client.post(URL, bamboo_payload(config={}), format="json")
    assert field_errors(response)["config.company_domain"] == ["Required for bamboohr with api_key."]


def test_complete_credentials_for_other_auth_types_start_active(api_client):
    jwt = api_client.post(
        URL,
        {
            "name": "DocuSign JWT",
            "provider": "docusign",
            "auth_type": "jwt",
            "config": {"client_id": "integration-key", "user_id": "user"},
            "credentials": {"private_key": rsa_pem()},
        },
        format="json",
    )
    assert jwt.status_code == HTTPStatus.CREATED, jwt.json()
    assert jwt.json()["status"] == "active"
    assert jwt.json()["config"]["account_domain"] == "account.docusign.com"
    saml = api_client.post(
        URL,
        {
            "name": "Workday SSO",
            "provider": "workday",
            "auth_type": "saml",
            "config": {"tenant": "acme", "idp_metadata_url": "https://idp.example.com/metadata"},
            "credentials": {},
        },
        format="json",
    )
    assert saml.status_code == HTTPStatus.CREATED, saml.json()
    assert saml.json()["status"] == "active"
    basic = api_client.post(
        URL,
        {
            "name": "Workday basic",
            "provider": "workday",
            "auth_type": "api_key",
            "config": {"tenant": "acme"},
            "credentials": {"username": "isu", "password": SENTINEL},
        },
        format="json",
    )
    assert basic.status_code == HTTPStatus.CREATED, basic.json()
    assert basic.json()["status"] == "active"
    assert basic.json()["credential_fields"] == ["password", "username"]


def test_duplicate_name_is_400_but_other_organization_may_reuse_it(api_client, other_client):
    assert api_client.post(URL, bamboo_payload(), format="json").status_code == HTTPStatus.CREATED
    response = api_client.post(URL, bamboo_payload(), format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "name" in error_fields(response)
    assert other_client.post(URL, bamboo_payload(), format="json").status_code == HTTPStatus.CREATED


# --- read -----------------------------------------------------------------------------


def test_list_and_filters(api_client, organization, other_organization):
    IntegrationFactory(organization=organization, provider="rippling", status="active", health_status="healthy")
    IntegrationFactory(organization=organization, provider="rippling", status="inactive")
    OAuthIntegrationFactory(organization=organization, health_status="unhealthy")
    IntegrationFactory(organization=other_organization, provider="rippling")

    assert api_client.get(URL).json()["count"] == 3
    assert api_client.get(f"{URL}?provider=rippling").json()["count"] == 2
    assert api_client.get(f"{URL}?status=pending").json()["count"] == 1
    assert api_client.get(f"{URL}?health_status=healthy").json()["count"] == 1
    assert api_client.get(f"{URL}?provider=rippling&status=inactive").json()["count"] == 1
    assert api_client.get(f"{URL}?status=bogus").status_code == HTTPStatus.BAD_REQUEST


def test_by_provider_route(api_client, organization, other_organization):
    mine = IntegrationFactory(organization=organization, provider="rippling")
    IntegrationFactory(organization=organization, provider="glassdoor", config={"partner_id": "p"})
    IntegrationFactory(organization=other_organization, provider="rippling")
    body = api_client.get(f"{URL}provider/rippling/").json()
    assert [row["id"] for row in body["results"]] == [str(mine.pk)]
    assert api_client.get(f"{URL}provider/rippling").status_code == HTTPStatus.OK
    assert api_client.get(f"{URL}provider/nope/").status_code == HTTPStatus.NOT_FOUND


def test_provider_catalogue(api_client):
    response = api_client.get(f"{URL}providers/")
    assert response.status_code == HTTPStatus.OK
    catalogue = {entry["name"]: entry for entry in response.json()}
    assert set(catalogue) == set(PROVIDERS)
    assert len(catalogue) == 15
    google = catalogue["google_calendar"]
    assert google["category"] == "calendar"
    assert google["supports_pkce"] is True
    assert google["extra_authorize_params"]["access_type"] == "offline"
    assert google["extra_authorize_params"]["prompt"] == "consent"
    assert catalogue["slack"]["supports_pkce"] is False
    assert catalogue["bamboohr"]["category"] == "hris"
    assert catalogue["docusign"]["category"] == "e_signature"
    assert catalogue["indeed"]["category"] == "job_board"
    tenant = next(f for f in catalogue["microsoft_teams"]["config_fields"] if f["name"] == "tenant")
    assert tenant["default"] == "common"
    assert catalogue["glassdoor"]["health_check"]["success"] == "none"
    assert api_client.get(f"{URL}providers").status_code == HTTPStatus.OK


def test_detail_never_shows_credentials(api_client, organization):
    integration = IntegrationFactory(organization=organization, credentials={"api_key": SENTINEL})
    response = api_client.get(detail(integration))
    assert response.status_code == HTTPStatus.OK
    assert SENTINEL not in response.content.decode()
    assert response.json()["credential_fields"] == ["api_key"]
    assert api_client.get(f"{URL}{integration.pk}").status_code == HTTPStatus.OK


def test_list_query_count_is_constant(api_client, organization, django_assert_max_num_queries):
    for index in range(40):
        IntegrationFactory(organization=organization, name=f"i{index}")
    api_client.get(URL)  # warm the key's last_used_at
    # key, count, page, and the page's open connection issues (one prefetch query)
    with django_assert_max_num_queries(4):
        response = api_client.get(f"{URL}?page_size=100")
    assert len(response.json()["results"]) == 40
    with django_assert_max_num_queries(4):
        api_client.get(f"{URL}?page_size=2")
    with django_assert_max_num_queries(4):
        api_client.get(f"{URL}provider/rippling/?page_size=100")


# --- update ---------------------------------------------------------------------------


def test_patch_without_credentials_keeps_them(api_client, organization):
    integration = IntegrationFactory(organization=organization, credentials={"api_key": SENTINEL})
    response = api_client.patch(detail(integration), {"name": "Renamed"}, format="json")
    assert response.status_code == HTTPStatus.OK, response.json()
    assert SENTINEL not in response.content.decode()
    integration.refresh_from_db()
    assert integration.name == "Renamed"
    assert integration.credentials == {"api_key": SENTINEL}


def test_patch_with_credentials_replaces_them(api_client, organization):
    integration = IntegrationFactory(organization=organization, credentials={"api_key": "old", "extra": "x"})
    response = api_client.patch(detail(integration), {"credentials": {"api_key": SENTINEL}}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["credential_fields"] == ["api_key"]
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": SENTINEL}


def test_put_replaces_the_integration_and_keeps_credentials(api_client, organization):
    integration = IntegrationFactory(
        organization=organization, provider="bamboohr", config={"company_domain": "a"}, credentials={"api_key": "k"}
    )
    payload = {"name": "Put", "provider": "bamboohr", "auth_type": "api_key", "config": {"company_domain": "b"}}
    response = api_client.put(detail(integration), payload, format="json")
    assert response.status_code == HTTPStatus.OK, response.json()
    integration.refresh_from_db()
    assert (integration.name, integration.config, integration.credentials) == (
        "Put",
        {"company_domain": "b"},
        {"api_key": "k"},
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"config": {"company_domain": ""}},
        {"credentials": {"api_key": ""}},
        {"auth_type": "oauth3"},
        {"provider": "rippling"},  # changing provider needs new credentials
        {"name": ""},
    ],
)
def test_invalid_update_is_400_and_changes_nothing(api_client, organization, payload):
    integration = IntegrationFactory(
        organization=organization,
        name="Keep",
        provider="bamboohr",
        config={"company_domain": "a"},
        credentials={"api_key": SENTINEL},
    )
    before = Integration.objects.filter(pk=integration.pk).values().get()
    response = api_client.patch(detail(integration), payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert SENTINEL not in response.content.decode()
    integration.refresh_from_db()
    assert Integration.objects.filter(pk=integration.pk).values().get() == before
    assert integration.credentials == {"api_key": SENTINEL}


def test_rename_to_a_taken_name_is_400(api_client, organization):
    IntegrationFactory(organization=organization, name="Taken")
    integration = IntegrationFactory(organization=organization, name="Mine")
    response = api_client.patch(detail(integration), {"name": "Taken"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "name" in error_fields(response)


def test_delete(api_client, organization):
    integration = IntegrationFactory(organization=organization)
    assert api_client.delete(detail(integration)).status_code == HTTPStatus.NO_CONTENT
    assert not Integration.objects.filter(pk=integration.pk).exists()


# --- sync results (extension of docs/API.md §3) ----------------------------------------


def test_sync_endpoint_records_failure_then_success(api_client, organization):
    integration = IntegrationFactory(organization=organization, credentials={"api_key": SENTINEL})
    response = api_client.post(
        f"{detail(integration)}sync/", {"success": False, "error": f"rejected key {SENTINEL}"}, format="json"
    )
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["last_sync_at"] is not None
    assert body["last_error"] == "rejected key [redacted]"
    assert body["last_error_at"] is not None
    response = api_client.post(f"{detail(integration)}sync/", {"success": True}, format="json")
    body = response.json()
    assert body["last_error"] == ""
    assert body["last_error_at"] is None
    assert api_client.post(f"{detail(integration)}sync/", {}, format="json").status_code == HTTPStatus.BAD_REQUEST


def test_sync_answers_say_it_is_deprecated_and_name_the_usage_endpoint(api_client, organization):
    integration = IntegrationFactory(organization=organization)
    response = api_client.post(f"{detail(integration)}sync/", {"success": True}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert response["Deprecation"] == "true"
    assert response["Link"] == f'<{detail(integration)}usage/>; rel="successor-version"'


def test_sync_bad_input_is_the_one_error_shape(api_client, organization):
    integration = IntegrationFactory(organization=organization)
    response = api_client.post(f"{detail(integration)}sync/", {"success": "maybe"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert error_fields(response) == {"success"}


def test_sync_is_deprecated_in_the_openapi_schema(anon_client):
    response = anon_client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    assert paths["/api/integrations/{id}/sync/"]["post"]["deprecated"] is True
    assert not any(
        operation.get("deprecated")
        for path, methods in paths.items()
        if not path.endswith("/sync/")
        for operation in methods.values()
    )


# --- tenancy and permissions ----------------------------------------------------------


def _all_routes(integration):
    base = detail(integration)
    return [
        ("get", base, None),
        ("put", base, {"name": "x", "provider": "rippling", "auth_type": "api_key"}),
        ("patch", base, {"name": "x"}),
        ("delete", base, None),
        ("post", f"{base}sync/", {"success": True}),
    ]


def test_other_organizations_integration_is_404_on_every_route(other_client, organization):
    integration = IntegrationFactory(organization=organization, name="Mine", credentials={"api_key": SENTINEL})
    for method, url, data in _all_routes(integration):
        response = getattr(other_client, method)(url, data, format="json")
        assert response.status_code == HTTPStatus.NOT_FOUND, (method, url)
    assert other_client.get(URL).json()["count"] == 0
    assert other_client.get(f"{URL}provider/rippling/").json()["count"] == 0
    integration.refresh_from_db()
    assert (integration.name, integration.last_sync_at) == ("Mine", None)


def test_read_only_key_cannot_write(read_only_client, organization):
    integration = IntegrationFactory(organization=organization, name="Mine")
    assert read_only_client.get(detail(integration)).status_code == HTTPStatus.OK
    assert read_only_client.get(URL).status_code == HTTPStatus.OK
    for method, url, data in _all_routes(integration)[1:]:
        response = getattr(read_only_client, method)(url, data, format="json")
        assert response.status_code == HTTPStatus.FORBIDDEN, (method, url)
    assert read_only_client.post(URL, bamboo_payload(), format="json").status_code == HTTPStatus.FORBIDDEN
    assert Integration.objects.count() == 1
    integration.refresh_from_db()
    assert integration.name == "Mine"


def test_anonymous_is_401(anon_client):
    assert anon_client.get(URL).status_code == HTTPStatus.UNAUTHORIZED
    assert anon_client.get(f"{URL}providers/").status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "6f1c2b1e-0000-4000-8000-000000000000"])
def test_unknown_or_malformed_id_is_404(api_client, bad_id):
    assert api_client.get(f"{URL}{bad_id}/").status_code == HTTPStatus.NOT_FOUND


def test_an_update_that_disconnects_puts_health_back_to_unknown(api_client, organization):
    response = api_client.post(
        URL,
        {
            "name": "IdP",
            "provider": "custom",
            "auth_type": "api_key",
            "config": {"health_check_url": "https://status.example.com/ping", "category": "hris"},
            "credentials": {"api_key": SENTINEL},
        },
        format="json",
    )
    integration = Integration.objects.get(pk=response.json()["id"])
    Integration.objects.filter(pk=integration.pk).update(health_status=Integration.HealthStatus.UNHEALTHY)
    oauth2 = {
        "authorization_url": "https://idp.example.com/authorize",
        "token_url": "https://idp.example.com/token",
        "client_id": "our-client",
        "category": "hris",
    }
    response = api_client.patch(
        detail(integration),
        {"auth_type": "oauth2", "config": oauth2, "credentials": {"client_secret": SENTINEL}},
        format="json",
    )
    assert response.status_code == HTTPStatus.OK, response.json()
    # Not authorized yet: not connected, so neither healthy nor unhealthy.
    assert response.json()["status"] == "pending" and response.json()["health_status"] == "unknown"
