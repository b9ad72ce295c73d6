from __future__ import annotations

import pytest

from integrations.models import Integration
from tests.integrations.factories import IntegrationFactory
from tests.webhooks.receiver import Receiver

SECRET = "sentinel-SECRET-5f4dcc3b5aa765d61d8327deb882cf99"
GOOGLE_URL = "https://www.googleapis.com/calendar/v3/users/me/calendarList/primary"
GRAPH_URL = "https://graph.microsoft.com/v1.0/me"
SLACK_URL = "https://slack.com/api/auth.test"
RIPPLING_URL = "https://api.rippling.com/platform/api/me"
CUSTOM_URL = "https://status.example.com/ping"


@pytest.fixture(autouse=True)
def oauth_clients(settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def oauth(organization, provider="google_calendar", *, token=SECRET, **kwargs) -> Integration:
    values = {
        "organization": organization,
        "provider": provider,
        "auth_type": Integration.AuthType.OAUTH2,
        "status": Integration.Status.ACTIVE,
        "credentials": {"access_token": token, "refresh_token": "refresh-" + token, "token_type": "Bearer"},
        "token_expires_at": None,
    }
    return IntegrationFactory(**{**values, **kwargs})


def api_key(organization, provider="rippling", *, key=SECRET, config=None, **kwargs) -> Integration:
    return IntegrationFactory(
        organization=organization, provider=provider, config=config or {}, credentials={"api_key": key}, **kwargs
    )


def custom(organization, url=CUSTOM_URL, **kwargs) -> Integration:
    return api_key(organization, "custom", config={"health_check_url": url, "category": "communication"}, **kwargs)
