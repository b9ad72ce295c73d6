"""A strict, consistent API: unknown and read-only fields, reprs, the Authorization scheme,
bounded lengths, the one error shape in the schema (docs/API.md "Errors", "Limits")."""

from __future__ import annotations

import importlib
import inspect
from http import HTTPStatus

import pytest
from rest_framework import exceptions, serializers

from common.api.exceptions import ERROR_TYPES, exception_handler
from common.api.serializers import StrictInputMixin
from common.exceptions import ApplicationError
from common.limits import MAX_URL_LENGTH
from integrations.models import Integration
from tests.api_errors import error_detail, error_fields, error_type, field_errors, problem
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db

INTEGRATIONS = "/api/integrations/"
WEBHOOKS = "/api/integrations/webhooks/"
API_SERIALIZER_MODULES = [
    "integrations.api.serializers",
    "webhooks.api.serializers",
    "organizations.api.serializers",
    "health.api.serializers",
]


def bamboo(**overrides):
    body = {
        "name": "BambooHR",
        "provider": "bamboohr",
        "auth_type": "api_key",
        "config": {"company_domain": "acme"},
        "credentials": {"api_key": "k"},
    }
    return {**body, **overrides}


def hook(**overrides):
    return {"name": "crm", "url": "https://93.184.216.34/hook", "events": ["*"], **overrides}


@pytest.fixture
def webhook(organization):
    from webhooks.services import webhook_create

    return webhook_create(organization=organization, name="mine", url="https://93.184.216.34/", events=["*"])


# --- unknown and read-only fields ---------------------------------------------------------


def test_every_api_serializer_is_strict():
    for module_name in API_SERIALIZER_MODULES:
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, serializers.BaseSerializer) and cls.__module__ == module_name:
                assert issubclass(cls, StrictInputMixin), f"{module_name}.{name} does not refuse unknown keys"


def test_an_unknown_field_is_a_400_naming_it_and_the_accepted_ones(api_client):
    response = api_client.post(WEBHOOKS, hook(colour="red"), format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    [message] = field_errors(response)["colour"]
    assert message.startswith("Unknown field (accepted: ") and "url" in message and "secret" in message
    assert error_type(response) == "validation_error" and error_detail(response).startswith("colour: Unknown field")
    assert not Webhook.objects.exists()


def test_a_read_only_field_is_a_400(api_client):
    response = api_client.post(INTEGRATIONS, bamboo(status="active"), format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field_errors(response) == {"status": ["This field is read-only."]}
    assert not Integration.objects.exists()
    key = api_client.post("/api/api-keys/", {"name": "ci", "prefix": "ik_mine"}, format="json")
    assert key.status_code == HTTPStatus.BAD_REQUEST and field_errors(key) == {"prefix": ["This field is read-only."]}


def test_patching_the_secret_is_refused_not_ignored(api_client, webhook):
    response = api_client.patch(f"{WEBHOOKS}{webhook.pk}/", {"secret": "whsec_" + "A" * 32}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "secret" in error_fields(response)
    assert Webhook.objects.get(pk=webhook.pk).secret == webhook.secret


def test_unknown_and_other_field_errors_come_together(api_client):
    response = api_client.post(WEBHOOKS, {"colour": "red", "events": ["*"]}, format="json")
    assert error_fields(response) >= {"colour", "name", "url"}


def test_unknown_query_parameters_of_validated_queries_are_refused(api_client, webhook):
    assert api_client.get(f"{WEBHOOKS}{webhook.pk}/logs/?success=true&page_size=5").status_code == HTTPStatus.OK
    # Logs are cursor-paginated: `?page=` is not theirs.
    response = api_client.get(f"{WEBHOOKS}{webhook.pk}/logs/?page=1")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "page" in error_fields(response)
    response = api_client.get(f"{WEBHOOKS}{webhook.pk}/logs/?sucess=true")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "sucess" in error_fields(response)


# --- messages without Python reprs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        (bamboo(provider=["slack"]), "provider", "Expected a string (one of the choices), got a list."),
        (bamboo(provider="myspace"), "provider", '"myspace" is not a valid choice.'),
        (bamboo(auth_type={"a": 1}), "auth_type", "Expected a string (one of the choices), got an object."),
    ],
)
def test_choice_errors_read_as_sentences(api_client, body, field, expected):
    response = api_client.post(INTEGRATIONS, body, format="json")
    assert field_errors(response)[field] == [expected]


def test_no_message_quotes_a_python_repr(api_client):
    responses = [
        api_client.post(INTEGRATIONS, bamboo(provider=["slack"]), format="json"),
        api_client.post(WEBHOOKS, hook(events=["nope.nothing"], integration=["x"]), format="json"),
        api_client.post("/api/events/", {"event": "no.such"}, format="json"),
        api_client.post(WEBHOOKS, hook(headers={"bad name": "x"}), format="json"),
    ]
    for response in responses:
        assert response.status_code == HTTPStatus.BAD_REQUEST
        text = response.content.decode()
        assert "['" not in text and "{'" not in text and " '" not in text.replace("\\'", ""), text
    assert field_errors(responses[2])["event"][0].startswith('Unknown event type "no.such"')


# --- the Authorization scheme ----------------------------------------------------------------


@pytest.mark.parametrize("header", ["Token ik_abc", "Basic dXNlcjpwYXNz", "ik_abc", "Bearer", "Bearer a b"])
def test_a_wrong_authorization_scheme_says_how_to_send_the_key(anon_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get("/api/organization/")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_type(response) == "authentication_failed"
    assert "Use `Authorization: Bearer <api key>`." in error_detail(response)


def test_no_credentials_is_not_authenticated(anon_client):
    response = anon_client.get("/api/organization/")
    assert response.status_code == HTTPStatus.UNAUTHORIZED and error_type(response) == "not_authenticated"


# --- bounded lengths ---------------------------------------------------------------------------


def test_a_huge_health_check_url_is_a_400_naming_it(api_client):
    config = {
        "authorization_url": "https://partner.test/authorize",
        "token_url": "https://partner.test/token",
        "health_check_url": "https://partner.test/" + "a" * 200_000,
    }
    body = {
        "name": "c",
        "provider": "custom",
        "auth_type": "api_key",
        "config": config,
        "credentials": {"api_key": "k"},
    }
    response = api_client.post(INTEGRATIONS, body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field_errors(response) == {"config.health_check_url": [f"At most {MAX_URL_LENGTH} characters."]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (WEBHOOKS, hook(url="https://93.184.216.34/" + "a" * MAX_URL_LENGTH), "url"),
        (WEBHOOKS, hook(name="n" * 201), "name"),
        (INTEGRATIONS, bamboo(name="n" * 201), "name"),
        (INTEGRATIONS, bamboo(config={"company_domain": "a" * 3000}), "config.company_domain"),
        ("/api/api-keys/", {"name": "n" * 101}, "name"),
        ("/api/events/", {"event": "job.opened", "idempotency_key": "k" * 201}, "idempotency_key"),
    ],
)
def test_overlong_values_are_a_400_naming_the_field(api_client, path, body, field):
    response = api_client.post(path, body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in field_errors(response), field_errors(response)


def test_a_url_at_the_limit_is_accepted(api_client):
    url = "https://93.184.216.34/" + "a" * (MAX_URL_LENGTH - len("https://93.184.216.34/"))
    response = api_client.post(WEBHOOKS, hook(url=url), format="json")
    assert response.status_code == HTTPStatus.CREATED, response.json()


def test_the_catalogue_tells_each_config_fields_limit(api_client):
    providers = {p["name"]: p for p in api_client.get(f"{INTEGRATIONS}providers/").json()}
    fields = {f["name"]: f for f in providers["custom"]["config_fields"]}
    assert fields["health_check_url"]["max_length"] == MAX_URL_LENGTH
    assert fields["redirect_uri"]["max_length"] == 500  # what an OAuth state can hold
    assert fields["use_pkce"]["max_length"] is None


# --- webhook names -------------------------------------------------------------------------------


def test_webhook_names_are_unique_per_organization(api_client, other_client, webhook):
    response = api_client.post(WEBHOOKS, hook(name="mine"), format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field_errors(response) == {"name": ['A webhook named "mine" already exists in this organization.']}
    assert other_client.post(WEBHOOKS, hook(name="mine"), format="json").status_code == HTTPStatus.CREATED

    other = api_client.post(WEBHOOKS, hook(name="other"), format="json").json()
    renamed = api_client.patch(f"{WEBHOOKS}{other['id']}/", {"name": " mine "}, format="json")
    assert renamed.status_code == HTTPStatus.BAD_REQUEST and "name" in error_fields(renamed)
    same = api_client.patch(f"{WEBHOOKS}{webhook.pk}/", {"name": "mine"}, format="json")
    assert same.status_code == HTTPStatus.OK


# --- one error shape -------------------------------------------------------------------------------


def test_every_error_response_in_the_schema_is_the_error_component(anon_client):
    schema = anon_client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    component = schema["components"]["schemas"]["Error"]
    assert set(component["required"]) == {"type", "title", "detail", "errors"}
    assert component["properties"]["type"]["allOf"] == [{"$ref": "#/components/schemas/ErrorTypeEnum"}]
    assert schema["components"]["schemas"]["ErrorTypeEnum"]["enum"] == list(ERROR_TYPES)
    seen = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if path == "/api/integrations/{id}/proxy/{path}" and code != "502":
                    continue  # a 4xx there may be the provider's own answer, passed through (docs/API.md)
                if code != "default" and int(code) >= 400:
                    seen += 1
                    ref = response["content"]["application/json"]["schema"]
                    assert ref == {"$ref": "#/components/schemas/Error"}, (method, path, code)
    assert seen > 50


def test_rate_limits_answer_the_shape_with_retry_after(rf):
    response = exception_handler(exceptions.Throttled(wait=2.4), {"request": rf.get("/api/")})  # DRF rounds up
    assert response.data == {
        "type": "rate_limited",
        "title": "Too many requests",
        "detail": response.data["detail"],
        "errors": {},
        "retry_after": 3,
    }


def test_application_errors_keep_their_context_keys(rf):
    error = ApplicationError("Slow down.", status_code=429, extra={"retry_after": 30})
    response = exception_handler(error, {"request": rf.get("/api/")})
    assert response.status_code == 429
    assert response.data == {
        "type": "rate_limited",
        "title": "Too many requests",
        "detail": "Slow down.",
        "errors": {},
        "retry_after": 30,
    }


def test_every_application_error_type_is_documented():
    import integrations.grants.exchange
    import integrations.oauth.client
    import integrations.oauth.flows
    import integrations.oauth.tokens
    import integrations.saml
    import integrations.validation  # noqa: F401

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(ApplicationError):
        assert cls.error_type is None or cls.error_type in ERROR_TYPES, cls


def test_a_malformed_body_is_a_parse_error(api_client):
    response = api_client.post(WEBHOOKS, "{not json", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert problem(response)["type"] == "parse_error" and problem(response)["errors"] == {}
