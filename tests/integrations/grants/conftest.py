from __future__ import annotations

import pytest

from integrations.services import integration_create
from tests.integrations.grants.authorization_server import LocalAuthorizationServer
from tests.integrations.grants.keys import rsa_pem, service_account

DOCUSIGN_DEMO = "account-d.docusign.com"
DOCUSIGN_TOKEN_URL = f"https://{DOCUSIGN_DEMO}/oauth/token"
INTEGRATION_KEY = "0b5c7a1e-7f0e-4f4e-9a55-2d8f3c1b9e77"
DOCUSIGN_USER = "5d1f3a2b-8c4e-4d6f-a1b2-c3d4e5f6a7b8"
SUBJECT = "recruiter@acme.example"


@pytest.fixture
def auth_server():
    server = LocalAuthorizationServer().start()
    yield server
    server.stop()


def docusign_jwt(organization, *, name="DocuSign JWT", config=None, private_key=None):
    return integration_create(
        organization=organization,
        name=name,
        provider="docusign",
        auth_type="jwt",
        config={
            "account_domain": DOCUSIGN_DEMO,
            "client_id": INTEGRATION_KEY,
            "user_id": DOCUSIGN_USER,
            **(config or {}),
        },
        credentials={"private_key": private_key or rsa_pem()},
    )


def google_jwt(organization, provider="google_calendar", *, name=None, config=None, key=None):
    return integration_create(
        organization=organization,
        name=name or f"{provider} service account",
        provider=provider,
        auth_type="jwt",
        config={"subject": SUBJECT, **(config or {})},
        credentials={"service_account": key if key is not None else service_account()},
    )


def custom_jwt(organization, server: LocalAuthorizationServer, *, name="Custom JWT", config=None, credentials=None):
    return integration_create(
        organization=organization,
        name=name,
        provider="custom",
        auth_type="jwt",
        config={
            "token_url": server.token_url,
            "issuer": "acme-hiring",
            "subject": SUBJECT,
            "scopes": ["calendar"],
            "health_check_url": server.check_url,
            **(config or {}),
        },
        credentials=credentials or {"private_key": rsa_pem()},
    )
