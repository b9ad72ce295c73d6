from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.client import base, feedback, hooks
from integrations.models import Integration
from tests.integrations.factories import IntegrationFactory

TOKEN = "sentinel-TOKEN-1b2c3d4e5f"
KEY = "sentinel-KEY-9a8b7c6d5e"


@pytest.fixture(autouse=True)
def client_settings(settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"
    settings.MICROSOFT_CLIENT_ID = "ms-client"
    settings.MICROSOFT_CLIENT_SECRET = "ms-secret"
    settings.SLACK_CLIENT_ID = "slack-client"
    settings.SLACK_CLIENT_SECRET = "slack-secret"
    settings.DOCUSIGN_CLIENT_ID = "docusign-client"
    settings.DOCUSIGN_CLIENT_SECRET = "docusign-secret"
    settings.INTEGRATIONS_CLIENT_RETRY_BACKOFF_MS = 1
    feedback.forget()
    base.forget()
    yield
    feedback.forget()
    base.forget()


@pytest.fixture
def sleeps(monkeypatch):
    """The waits the client asked for (time.sleep recorded, not slept)."""
    waited: list[float] = []
    monkeypatch.setattr("integrations.client.client.time.sleep", waited.append)
    return waited


@pytest.fixture
def records():
    """Every CallRecord the client reports through the after-call hook."""
    seen: list[hooks.CallRecord] = []
    hooks.register_after_call(seen.append)
    yield seen
    hooks.unregister(seen.append)


def oauth(organization, provider="google_calendar", *, token=TOKEN, expires_in=timedelta(hours=1), **kwargs):
    values = {
        "organization": organization,
        "provider": provider,
        "auth_type": Integration.AuthType.OAUTH2,
        "status": Integration.Status.ACTIVE,
        "credentials": {"access_token": token, "refresh_token": "refresh-" + token, "token_type": "Bearer"},
        "token_expires_at": timezone.now() + expires_in if expires_in is not None else None,
    }
    return IntegrationFactory(**{**values, **kwargs})


def api_key(organization, provider="rippling", *, key=KEY, config=None, credentials=None, **kwargs):
    return IntegrationFactory(
        organization=organization,
        provider=provider,
        config=config or {},
        credentials=credentials or {"api_key": key},
        **kwargs,
    )
