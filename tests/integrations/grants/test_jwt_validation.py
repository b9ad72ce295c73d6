"""Creating and updating jwt integrations: a clear 400 naming the field, never the key."""

import json
from http import HTTPStatus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.models import Integration
from tests.api_errors import field_errors
from tests.integrations.grants.conftest import DOCUSIGN_DEMO, SUBJECT
from tests.integrations.grants.keys import ec_pem, rsa_pem, service_account, service_account_text

pytestmark = pytest.mark.django_db

URL = "/api/integrations/"
KEY_LINE = rsa_pem().splitlines()[2]


def docusign(**overrides):
    payload = {
        "name": "DocuSign JWT",
        "provider": "docusign",
        "auth_type": "jwt",
        "config": {"account_domain": DOCUSIGN_DEMO, "client_id": "integration-key", "user_id": "user-id"},
        "credentials": {"private_key": rsa_pem()},
    }
    return {**payload, **overrides}


def google(provider="google_calendar", **overrides):
    payload = {
        "name": "Calendar service account",
        "provider": provider,
        "auth_type": "jwt",
        "config": {"subject": SUBJECT},
        "credentials": {"service_account": service_account()},
    }
    return {**payload, **overrides}


def custom(config=None, credentials=None):
    return {
        "name": "Custom JWT",
        "provider": "custom",
        "auth_type": "jwt",
        "config": {"token_url": "https://auth.example.com/token", "issuer": "acme", **(config or {})},
        "credentials": credentials or {"private_key": rsa_pem()},
    }


def encrypted_pem() -> str:
    key = serialization.load_pem_private_key(rsa_pem().encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()


def short_rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def garbled_pem() -> str:
    lines = rsa_pem().splitlines()
    return "\n".join([lines[0], *lines[1:5], lines[-1]])  # a truncated key, still PEM-shaped


@pytest.mark.parametrize(
    ("payload", "section", "field", "phrase"),
    [
        (docusign(credentials={"private_key": "not pem"}), "credentials", "private_key", "PEM"),
        (docusign(credentials={"private_key": garbled_pem()}), "credentials", "private_key", "readable"),
        (docusign(credentials={"private_key": encrypted_pem()}), "credentials", "private_key", "passphrase"),
        (docusign(credentials={"private_key": short_rsa_pem()}), "credentials", "private_key", "2048"),
        (docusign(credentials={}), "credentials", "private_key", "Required"),
        (docusign(config={"client_id": "k"}), "config", "user_id", "Required"),
        (docusign(config={"user_id": "u"}), "config", "client_id", "Required"),
        (google(config={}), "config", "subject", "Required"),
        (google(credentials={}), "credentials", "service_account", "Required"),
        (google(credentials={"service_account": "{not json"}), "credentials", "service_account", "JSON key"),
        (
            google(credentials={"service_account": service_account(client_email=None, private_key_id=None)}),
            "credentials",
            "service_account",
            "client_email, private_key_id",
        ),
        (
            google(credentials={"service_account": service_account(private_key=garbled_pem())}),
            "credentials",
            "service_account",
            "private_key",
        ),
        (
            google(credentials={"service_account": service_account(type="authorized_user")}),
            "credentials",
            "service_account",
            "service_account",
        ),
        (
            google(credentials={"service_account": service_account(token_uri="https://token.evil.example/t")}),
            "credentials",
            "service_account",
            "own hosts",
        ),
        (custom(config={"token_url": None}), "config", "token_url", "Required"),
        (custom(config={"issuer": None}), "config", "issuer", "Required"),
        (custom(config={"algorithm": "ES256"}), "credentials", "private_key", "RSA"),
        (
            custom(config={"algorithm": "RS256"}, credentials={"private_key": ec_pem()}),
            "credentials",
            "private_key",
            "ES256",
        ),
        (custom(config={"algorithm": "none"}), "config", "algorithm", "one of"),
        (
            custom(config={"algorithm": "HS256"}, credentials={"client_secret": "short"}),
            "credentials",
            "client_secret",
            "32",
        ),
        (
            custom(config={"algorithm": "HS256"}, credentials={"private_key": rsa_pem()}),
            "credentials",
            "client_secret",
            "HS256",
        ),
        (custom(config={"extra_claims": {"sub": "admin", "tenant": "acme"}}), "config", "extra_claims", "sub"),
        (custom(config={"extra_claims": ["not", "an", "object"]}), "config", "extra_claims", "object"),
    ],
)
def test_invalid_jwt_integration_is_400_naming_the_field(api_client, payload, section, field, phrase):
    payload = {**payload, "config": {k: v for k, v in payload["config"].items() if v is not None}}
    response = api_client.post(URL, payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    errors = field_errors(response)
    assert f"{section}.{field}" in errors, errors
    assert phrase in " ".join(errors[f"{section}.{field}"])
    text = response.content.decode()
    assert KEY_LINE not in text and "PRIVATE KEY" not in text
    assert not Integration.objects.exists()


def test_update_with_a_broken_key_is_400_and_changes_nothing(api_client):
    created = api_client.post(URL, docusign(), format="json")
    assert created.status_code == HTTPStatus.CREATED, created.json()
    path = f"{URL}{created.json()['id']}/"
    response = api_client.patch(path, {"credentials": {"private_key": garbled_pem()}}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "credentials.private_key" in field_errors(response)
    integration = Integration.objects.get()
    assert integration.credentials["private_key"] == rsa_pem()


@pytest.mark.parametrize("as_text", [False, True])
@pytest.mark.parametrize("provider", ["google_calendar", "gmail"])
def test_a_service_account_key_is_accepted_as_object_or_text(api_client, provider, as_text):
    key = service_account_text() if as_text else service_account()
    response = api_client.post(URL, google(provider, credentials={"service_account": key}), format="json")
    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert body["status"] == "active"
    assert body["credential_fields"] == ["service_account"]
    assert KEY_LINE not in response.content.decode()
    stored = Integration.objects.get().credentials["service_account"]
    assert json.loads(stored) == service_account()


def test_custom_jwt_with_every_option_is_accepted(api_client):
    response = api_client.post(
        URL,
        custom(
            config={
                "subject": "svc:hiring",
                "audience": "https://auth.example.com",
                "key_id": "2026-01",
                "algorithm": "PS256",
                "scopes": ["read"],
                "extra_claims": {"tenant": "acme"},
                "health_check_url": "https://api.example.com/me",
            }
        ),
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["consent_url"] == ""


def test_the_provider_catalogue_describes_the_jwt_grant(api_client):
    providers = {p["name"]: p for p in api_client.get(f"{URL}providers/").json()}
    assert providers["docusign"]["jwt"] == {
        "key": "private_key",
        "default_scopes": ["signature", "impersonation"],
        "needs_consent": True,
    }
    assert providers["gmail"]["jwt"]["key"] == "service_account"
    assert providers["gmail"]["jwt"]["needs_consent"] is False
    assert "jwt" in providers["google_calendar"]["auth_types"]
    assert providers["slack"]["jwt"] is None
