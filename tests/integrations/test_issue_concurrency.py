"""Two detectors at once on one integration never lose counts nor create two active rows.

Run on SQLite (IMMEDIATE transactions queue the writers) and on PostgreSQL (row locks:
the integration's, then the issue's; see integrations/issues.py).
"""

from __future__ import annotations

import pytest
import responses

from health.services import health_check_now
from integrations.issues import issue_cleared, issue_detected
from integrations.models import ConnectionIssue, Integration
from integrations.oauth.tokens import oauth_refresh_token
from tests.concurrency import Concurrently
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL

pytestmark = pytest.mark.django_db(transaction=True)  # threads see each other's commits

Kind = ConnectionIssue.Kind
GOOGLE_URL = "https://www.googleapis.com/calendar/v3/users/me/calendarList/primary"
ROUNDS = 10


@pytest.fixture(autouse=True)
def google_app(settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"


def one_active_row(integration, kind) -> ConnectionIssue:
    rows = list(ConnectionIssue.objects.filter(integration=integration, kind=kind, status__in=["pending", "open"]))
    assert len(rows) == 1, rows
    return rows[0]


def test_two_detectors_creating_the_first_row_at_once_make_one_row_with_both_counts(organization):
    integration = IntegrationFactory(organization=organization)

    def detector():
        mine = Integration.objects.get(pk=integration.pk)  # each its own copy
        for _ in range(ROUNDS):
            issue_detected(integration=mine, kind=Kind.PROVIDER_UNAVAILABLE, message="503 from the provider")

    with Concurrently(detector, detector):
        pass
    issue = one_active_row(integration, Kind.PROVIDER_UNAVAILABLE)
    assert issue.count == issue.detected_streak == 2 * ROUNDS
    assert issue.status == "open"


def test_a_health_run_and_a_token_refresh_at_once_lose_no_count(organization):
    integration = OAuthIntegrationFactory(
        organization=organization,
        status=Integration.Status.ACTIVE,
        credentials={"access_token": "valid", "refresh_token": "refresh"},
        token_expires_at=None,  # the check uses the token as is; the refresher forces a refresh
    )

    def health_runner():
        for _ in range(ROUNDS):
            health_check_now(integration=Integration.objects.get(pk=integration.pk))

    def token_refresher():
        for _ in range(ROUNDS):
            with pytest.raises(Exception, match="HTTP 503"):
                oauth_refresh_token(integration=Integration.objects.get(pk=integration.pk), force=True)

    with responses.RequestsMock() as mock:
        mock.get(GOOGLE_URL, status=503)  # the API is down ...
        mock.post(GOOGLE_TOKEN_URL, status=503)  # ... and so is the token endpoint
        with Concurrently(health_runner, token_refresher):
            pass
    issue = one_active_row(integration, Kind.PROVIDER_UNAVAILABLE)
    assert issue.count == 2 * ROUNDS  # every detection of both detectors counted
    assert issue.status == "open"
    integration.refresh_from_db()
    assert integration.token_refresh_attempts == integration.token_refresh_failures == ROUNDS
    assert integration.health_status == "unhealthy"


def test_detections_and_clearings_at_once_keep_every_count(organization):
    integration = IntegrationFactory(organization=organization)
    issue_detected(integration=integration, kind=Kind.CREDENTIALS_REJECTED, message="401")

    def detector():
        for _ in range(ROUNDS):
            issue_detected(
                integration=Integration.objects.get(pk=integration.pk), kind=Kind.CREDENTIALS_REJECTED, message="401"
            )

    def clearer():
        for _ in range(ROUNDS):
            issue_cleared(integration=Integration.objects.get(pk=integration.pk), kind=Kind.CREDENTIALS_REJECTED)

    with Concurrently(detector, clearer):
        pass
    rows = ConnectionIssue.objects.filter(integration=integration, kind=Kind.CREDENTIALS_REJECTED)
    assert rows.filter(status__in=["pending", "open"]).count() <= 1
    # Interleaved, the issue may have resolved (three clears in a row) and opened again; the
    # detections are all there, spread over the rows.
    assert sum(rows.values_list("count", flat=True)) == 1 + ROUNDS
