"""Token endpoint outcomes other than a refusal of the grant: a 429 (issue `rate_limited`,
with `retry_after`, and no attempt before it), a config the grant cannot use (the attempt
still counts: integrations/oauth/tokens.py)."""

from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone

from integrations.grants.exchange import GrantConfigInvalid
from integrations.models import ConnectionIssue, Integration
from integrations.oauth.client import TokenEndpointRateLimited
from integrations.oauth.tokens import get_access_token
from tests.integrations.grants.conftest import DOCUSIGN_TOKEN_URL, docusign_jwt
from tests.integrations.grants.keys import rsa_pem

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("retry_after", ["120", ""])
def test_a_429_from_the_token_endpoint_is_rate_limited(organization, settings, retry_after):
    settings.INTEGRATION_ISSUE_OPEN_AFTER = 1
    integration = docusign_jwt(organization)
    headers = {"Retry-After": retry_after} if retry_after else {}
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, status=HTTPStatus.TOO_MANY_REQUESTS, json={}, headers=headers)
        with pytest.raises(TokenEndpointRateLimited) as limited:
            get_access_token(integration)
    assert "HTTP 429" in limited.value.message and not limited.value.is_terminal
    integration.refresh_from_db()
    assert integration.needs_reauthorization is False
    (issue,) = ConnectionIssue.objects.filter(integration=integration)
    assert (issue.kind, issue.status) == (ConnectionIssue.Kind.RATE_LIMITED, "open")
    expected = {"error": "http_429", "source": "token_endpoint"}
    if retry_after:
        expected["retry_after"] = 120
        # no attempt before the provider said: the backoff is at least Retry-After
        assert integration.refresh_retry_at >= timezone.now() + timedelta(seconds=110)
    assert issue.details == expected


def test_a_mint_refused_by_its_config_still_counts_the_attempt(organization, settings):
    settings.ALLOW_PRIVATE_URLS = False
    integration = Integration.objects.create(
        organization=organization,
        name="legacy",
        provider="custom",
        auth_type="jwt",
        status=Integration.Status.ACTIVE,
        config={"token_url": "http://auth.example.com/token", "issuer": "acme"},
    )
    integration.credentials = {"private_key": rsa_pem()}
    integration.save()
    for attempt in (1, 2):
        with responses.RequestsMock(), pytest.raises(GrantConfigInvalid, match="https"):
            get_access_token(integration)
        integration.refresh_from_db()
        assert (integration.token_refresh_attempts, integration.token_refresh_failures) == (attempt, attempt)
    assert "Token refresh failed: Cannot mint a token" in integration.last_error
    assert integration.last_error_at is not None
    assert integration.needs_reauthorization is False and integration.refresh_retry_at is None
