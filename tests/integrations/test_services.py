"""Integration edits through the API against the token refresher and a health run, at the same time.

Token bookkeeping belongs to `integrations.oauth.tokens`, `health_status` and
`last_health_check_at` to the health run; an edit of the name writes neither. Every one
of these writers already locked the row before it wrote, so this test also passes on the
code before the writes named their fields: it guards the seam rather than reproducing a loss.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone

from health.services import health_run
from integrations.models import Integration
from integrations.oauth.tokens import oauth_refresh_expiring_tokens
from tests.concurrency import Concurrently
from tests.integrations.factories import OAuthIntegrationFactory
from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, form, token_body

pytestmark = pytest.mark.django_db(transaction=True)  # the transactional_db fixture: threads see commits

GOOGLE_HEALTH_URL = "https://www.googleapis.com/calendar/v3/users/me/calendarList/primary"


@pytest.fixture(autouse=True)
def google_client(settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"


def test_renames_keep_what_the_refresher_and_the_health_run_wrote(organization, api_client):
    integration = OAuthIntegrationFactory(
        organization=organization,
        status=Integration.Status.ACTIVE,
        credentials={"access_token": "access-0", "refresh_token": "refresh-0", "token_type": "Bearer"},
    )
    url = f"/api/integrations/{integration.pk}/"
    numbers = itertools.count(1)
    refreshes: list[str] = []

    def token_endpoint(request):
        sent = form(request)["refresh_token"]
        refreshes.append(sent)
        n = next(numbers)
        time.sleep(0.05)  # hold the row lock while renames queue behind it
        return HTTPStatus.OK, {"Content-Type": "application/json"}, token_body(f"access-{n}", f"refresh-{n}")

    for round_ in range(4):
        Integration.objects.filter(pk=integration.pk).update(
            token_expires_at=timezone.now() + timedelta(seconds=30), last_health_check_at=None
        )
        done = threading.Event()

        def engine(done=done):
            try:
                oauth_refresh_expiring_tokens()
                health_run(integration_ids=[integration.pk], force=True)
            finally:
                done.set()

        def rename(done=done, round_=round_):
            n = 0
            while not done.is_set() or n < 3:
                response = api_client.patch(url, {"name": f"r{round_}-{n}"}, format="json")
                assert response.status_code == HTTPStatus.OK, response.content
                n += 1

        with responses.RequestsMock() as mock:
            mock.add_callback(responses.POST, GOOGLE_TOKEN_URL, callback=token_endpoint)
            mock.get(GOOGLE_HEALTH_URL, json={})
            with Concurrently(engine, rename):
                pass
        integration.refresh_from_db()
        assert integration.name.startswith(f"r{round_}-")
        # One refresh per round, each with the refresh token the previous one stored.
        assert refreshes == [f"refresh-{n}" for n in range(round_ + 1)]
        assert integration.credentials["refresh_token"] == f"refresh-{round_ + 1}"
        assert integration.token_expires_at > timezone.now() + timedelta(minutes=50)
        assert integration.health_status == Integration.HealthStatus.HEALTHY
        assert integration.last_health_check_at is not None
        assert integration.status == Integration.Status.ACTIVE
