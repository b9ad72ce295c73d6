"""Scopes of a JWT grant's token answer compared with the ones the assertion asked for
(integrations/detectors.py `configured_scopes`: without config.scopes, the catalogue's
`jwt.default_scopes`, else the provider's)."""

import json

import pytest
import responses

from integrations.detectors import configured_scopes
from integrations.models import ConnectionIssue
from integrations.oauth.tokens import get_access_token, oauth_refresh_token
from tests.integrations.grants.conftest import DOCUSIGN_TOKEN_URL, docusign_jwt, google_jwt
from tests.integrations.grants.keys import GOOGLE_TOKEN_URL

pytestmark = pytest.mark.django_db

JSON = {"Content-Type": "application/json"}
CALENDAR = "https://www.googleapis.com/auth/calendar"


def answer(scope: str) -> str:
    return json.dumps({"access_token": "minted", "token_type": "Bearer", "expires_in": 3600, "scope": scope})


def test_docusign_jwt_asks_for_its_grant_defaults(organization):
    assert configured_scopes(docusign_jwt(organization)) == ["signature", "impersonation"]


def test_docusign_jwt_granted_fewer_scopes_opens_missing_scopes(organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, body=answer("signature"), headers=JSON)
        get_access_token(integration)
    issue = ConnectionIssue.objects.get(integration=integration, kind=ConnectionIssue.Kind.MISSING_SCOPES)
    assert issue.status == "open"
    assert issue.details["missing_scopes"] == ["impersonation"]


def test_google_jwt_granted_fewer_scopes_opens_missing_scopes_then_all_granted_resolves(organization):
    integration = google_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=answer(f"{CALENDAR}.readonly"), headers=JSON)
        get_access_token(integration)
    issue = ConnectionIssue.objects.get(integration=integration, kind=ConnectionIssue.Kind.MISSING_SCOPES)
    assert issue.details["missing_scopes"] == [f"{CALENDAR}.events"]

    integration.refresh_from_db()
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=answer(f"{CALENDAR}.readonly {CALENDAR}.events"), headers=JSON)
        oauth_refresh_token(integration=integration, force=True)
    issue.refresh_from_db()
    assert issue.status == "resolved"
