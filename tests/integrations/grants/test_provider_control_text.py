"""A provider's error text with a NUL (or another control character) in it: the failure is
still recorded and announced, and the runs that met it go on (integrations/oauth/client.py
`_checked`, integrations/issues.py `_announce`, integrations/oauth/tokens.py)."""

import json
from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone

from integrations.models import ConnectionIssue, Integration
from integrations.oauth.tokens import get_access_token, oauth_refresh_expiring_tokens
from tests.api_errors import error_detail
from tests.integrations.grants.conftest import DOCUSIGN_TOKEN_URL, docusign_jwt
from webhooks.models import Event

pytestmark = pytest.mark.django_db

JSON = {"Content-Type": "application/json"}
CONSENT_WITH_NUL = {"error": "consent_required", "error_description": "consent\u0000needed\u0007 now"}


def no_control_text(text: str) -> bool:
    return not any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in text)


def test_a_nul_in_the_refusal_is_recorded_through_the_refresh_endpoint(api_client, organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, status=HTTPStatus.BAD_REQUEST, json=CONSENT_WITH_NUL)
        response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    detail = error_detail(response)
    assert "consent_required" in detail and no_control_text(detail)
    integration.refresh_from_db()
    assert integration.needs_reauthorization is True
    assert integration.status == Integration.Status.ERROR
    assert "consent needed  now" in integration.last_error and no_control_text(integration.last_error)
    assert (integration.token_refresh_attempts, integration.token_refresh_failures) == (1, 1)
    issue = ConnectionIssue.objects.get(integration=integration, kind=ConnectionIssue.Kind.REAUTHORIZATION_REQUIRED)
    assert issue.status == "open" and no_control_text(issue.message)
    events = set(Event.objects.filter(organization=organization).values_list("type", flat=True))
    assert {"integration.issue.opened", "integration.reauthorization_required"} <= events


def test_the_proactive_refresh_goes_on_after_a_refusal_with_a_nul(organization):
    refused = docusign_jwt(organization, name="refused")
    later = docusign_jwt(organization, name="later")
    now = timezone.now()
    for integration, minutes in ((refused, 2), (later, 4)):  # refreshed in this order
        Integration.objects.filter(pk=integration.pk).update(
            status=Integration.Status.ACTIVE,
            credentials={**integration.credentials, "access_token": f"old-{integration.name}"},
            token_expires_at=now + timedelta(minutes=minutes),
        )
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, status=HTTPStatus.BAD_REQUEST, json=CONSENT_WITH_NUL)
        mock.post(
            DOCUSIGN_TOKEN_URL,
            body=json.dumps({"access_token": "fresh", "token_type": "Bearer", "expires_in": 3600}),
            headers=JSON,
        )
        summary = oauth_refresh_expiring_tokens(within=timedelta(minutes=5))

    assert (summary.refreshed, summary.failed) == (1, 1)
    refused.refresh_from_db()
    assert refused.needs_reauthorization is True and no_control_text(refused.last_error)
    assert get_access_token(Integration.objects.get(pk=later.pk)) == "fresh"


def test_an_issue_whose_event_is_refused_is_still_opened_and_the_refusal_logged(organization, settings, caplog):
    from integrations.issues import issue_detected

    settings.WEBHOOKS_MAX_PAYLOAD_BYTES = 50  # every issue event is refused
    integration = docusign_jwt(organization)
    issue = issue_detected(integration=integration, kind=ConnectionIssue.Kind.CONFIG_INVALID, message="bad config")

    assert issue is not None and issue.status == "open"
    assert ConnectionIssue.objects.filter(pk=issue.pk, status="open").exists()
    assert "Could not emit integration.issue.opened" in caplog.text
    assert not Event.objects.filter(organization=organization).exists()


def test_the_proactive_refresh_logs_an_unexpected_failure_and_goes_on(organization, caplog):
    """Any exception of one integration (here: credentials stored around validation as a
    JSON list) is logged with its traceback and counted as failed; the next still refreshes."""
    broken = docusign_jwt(organization, name="broken")
    later = docusign_jwt(organization, name="later")
    now = timezone.now()
    Integration.objects.filter(pk=broken.pk).update(status=Integration.Status.ACTIVE, token_expires_at=now)
    Integration.objects.filter(pk=later.pk).update(
        status=Integration.Status.ACTIVE, token_expires_at=now + timedelta(minutes=4)
    )
    broken.credentials = ["not", "an", "object"]
    broken.save(update_fields=["credentials"])
    with responses.RequestsMock() as mock:
        mock.post(
            DOCUSIGN_TOKEN_URL,
            body=json.dumps({"access_token": "fresh", "token_type": "Bearer", "expires_in": 3600}),
            headers=JSON,
        )
        summary = oauth_refresh_expiring_tokens(within=timedelta(minutes=5))

    assert (summary.refreshed, summary.failed) == (1, 1)
    assert f"Proactive refresh of integration {broken.pk} failed unexpectedly" in caplog.text
    assert "Traceback" in caplog.text
    assert Integration.objects.get(pk=later.pk).credentials["access_token"] == "fresh"
