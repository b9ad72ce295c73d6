"""Which connection issue a token endpoint's refusal of the client opens, per grant
(integrations/grants/exchange.py, integrations/detectors.py; docs/API.md, docs/OAUTH.md):
`invalid_client` is `credentials_rejected` and backs off; the JWT grant's
`unauthorized_client` (Google: domain-wide delegation not granted) is terminal,
`reauthorization_required`, saying what to delegate."""

from http import HTTPStatus

import pytest
import responses

from integrations.models import ConnectionIssue, Integration
from integrations.oauth.client import OAuthError
from integrations.oauth.tokens import ReauthorizationRequired, get_access_token
from tests.integrations.grants.conftest import DOCUSIGN_TOKEN_URL, docusign_jwt, google_jwt
from tests.integrations.grants.keys import GOOGLE_TOKEN_URL, SA_CLIENT_ID

pytestmark = pytest.mark.django_db

Kind = ConnectionIssue.Kind


def active_kinds(integration: Integration) -> set[str]:
    return set(ConnectionIssue.objects.filter(integration=integration).values_list("kind", flat=True))


@pytest.mark.parametrize("grant", ["docusign", "google"])
def test_invalid_client_of_a_jwt_grant_is_credentials_rejected_and_backs_off(organization, grant):
    integration = docusign_jwt(organization) if grant == "docusign" else google_jwt(organization)
    url = DOCUSIGN_TOKEN_URL if grant == "docusign" else GOOGLE_TOKEN_URL
    with responses.RequestsMock() as mock:
        mock.post(
            url, status=HTTPStatus.BAD_REQUEST, json={"error": "invalid_client", "error_description": "no such client"}
        )
        with pytest.raises(OAuthError) as refused:
            get_access_token(integration)
    assert not isinstance(refused.value, ReauthorizationRequired)
    assert refused.value.error == "invalid_client" and not refused.value.is_terminal
    integration.refresh_from_db()
    assert integration.needs_reauthorization is False
    assert integration.refresh_retry_at is not None and integration.refresh_failure_count == 1
    assert active_kinds(integration) == {Kind.CREDENTIALS_REJECTED}
    issue = ConnectionIssue.objects.get(integration=integration)
    assert issue.status == "open"
    assert issue.details == {"error": "invalid_client", "source": "token_endpoint"}
    assert "key is the one registered" in issue.message


def test_unauthorized_client_of_google_is_reauthorization_required_with_the_delegation_hint(organization):
    integration = google_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=HTTPStatus.UNAUTHORIZED, json={"error": "unauthorized_client"})
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
    integration.refresh_from_db()
    assert integration.needs_reauthorization is True
    assert active_kinds(integration) == {Kind.REAUTHORIZATION_REQUIRED}
    issue = ConnectionIssue.objects.get(integration=integration)
    assert issue.status == "open" and issue.details["error"] == "unauthorized_client"
    assert "domain-wide delegation" in issue.message and SA_CLIENT_ID in issue.message
    assert "grant its consent again" in issue.message
