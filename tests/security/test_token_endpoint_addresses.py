"""A token endpoint that resolves to a private or reserved address at connect time is a
configuration to fix: issue `config_invalid`, not `provider_unavailable`
(integrations/oauth/client.py `TokenEndpointNotPublic`, integrations/detectors.py)."""

from http import HTTPStatus

import pytest

from integrations.models import ConnectionIssue, Integration
from integrations.oauth.client import TokenEndpointNotPublic
from integrations.oauth.tokens import get_access_token
from integrations.services import integration_create
from tests.api_errors import error_detail
from tests.integrations.grants.keys import rsa_pem

pytestmark = pytest.mark.django_db

TOKEN_URL = "https://tokens.partner.test/token"


def only_issue(integration: Integration) -> ConnectionIssue:
    (issue,) = ConnectionIssue.objects.filter(integration=integration)
    return issue


def test_an_oauth_refresh_against_a_private_token_endpoint_is_config_invalid(
    api_client, organization, fake_dns, settings
):
    fake_dns["tokens.partner.test"] = "10.1.2.3"
    settings.ALLOW_PRIVATE_URLS = True  # saved while allowed (or its DNS changed since)
    integration = integration_create(
        organization=organization,
        name="idp",
        provider="custom",
        auth_type="oauth2",
        config={"authorization_url": "https://public.partner.test/authorize", "token_url": TOKEN_URL, "client_id": "c"},
        credentials={"client_secret": "s"},
    )
    Integration.objects.filter(pk=integration.pk).update(status=Integration.Status.ACTIVE)
    integration.credentials = {**integration.credentials, "access_token": "a", "refresh_token": "r"}
    integration.save(update_fields=["credentials"])
    settings.ALLOW_PRIVATE_URLS = False

    response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "not on a public address" in error_detail(response)
    issue = only_issue(integration)
    assert (issue.kind, issue.status) == (ConnectionIssue.Kind.CONFIG_INVALID, "open")
    assert issue.details == {"error": "private_address", "source": "token_endpoint"}


def test_a_jwt_mint_against_a_private_token_endpoint_is_config_invalid(organization, fake_dns, settings):
    fake_dns["tokens.partner.test"] = "169.254.169.254"
    settings.ALLOW_PRIVATE_URLS = True
    integration = integration_create(
        organization=organization,
        name="jwt",
        provider="custom",
        auth_type="jwt",
        config={"token_url": TOKEN_URL, "issuer": "acme"},
        credentials={"private_key": rsa_pem()},
    )
    settings.ALLOW_PRIVATE_URLS = False
    with pytest.raises(TokenEndpointNotPublic):
        get_access_token(integration)
    integration.refresh_from_db()
    assert integration.needs_reauthorization is False
    issue = only_issue(integration)
    assert (issue.kind, issue.status) == (ConnectionIssue.Kind.CONFIG_INVALID, "open")
    assert "not on a public address" in issue.message
