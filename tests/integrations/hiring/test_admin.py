"""A connected calendar integration's change page shows its subscriptions (state, expiry;
never their secret) and its interview events, in a constant number of queries."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import CalendarSubscription, InterviewEvent

from .conftest import oauth

pytestmark = pytest.mark.django_db

ADMIN = "/admin/integrations/integration/"


def add_interviews(integration, count, start=0):
    InterviewEvent.objects.bulk_create(
        InterviewEvent(
            organization=integration.organization,
            integration=integration,
            interview_id=f"int-{n}",
            provider_event_id=f"evt{n}",
            title=f"Interview {n}",
            start_at=timezone.now() + timedelta(days=n),
            attendees=[{"email": f"person{n}@example.com", "response_status": "accepted"}],
        )
        for n in range(start, start + count)
    )


def test_calendar_change_page_shows_subscriptions_and_interviews_without_secrets(admin_client, organization):
    integration = oauth(organization, "google_calendar")
    CalendarSubscription.objects.create(
        organization=organization,
        integration=integration,
        channel_id="chan-1",
        client_state="sentinel-CHANNEL-TOKEN-77",
        sync_token="sentinel-SYNC-88",
        expires_at=timezone.now() + timedelta(days=3),
    )
    add_interviews(integration, 2)
    response = admin_client.get(f"{ADMIN}{integration.pk}/change/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "Change subscriptions" in page and "Active" in page
    assert "int-0" in page and "int-1" in page and "person1@example.com: accepted" in page
    assert "sentinel-CHANNEL-TOKEN-77" not in page and "sentinel-SYNC-88" not in page


def test_the_panels_cost_the_same_queries_for_many_interviews(admin_client, organization):
    integration = oauth(organization, "microsoft_outlook")
    add_interviews(integration, 2)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(f"{ADMIN}{integration.pk}/change/")
    add_interviews(integration, 30, start=2)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(f"{ADMIN}{integration.pk}/change/")
    assert "int-31" in response.content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)


def test_other_providers_have_no_calendar_panel(admin_client, organization):
    integration = oauth(organization, "slack")
    assert "Change subscriptions" not in admin_client.get(f"{ADMIN}{integration.pk}/change/").content.decode()
