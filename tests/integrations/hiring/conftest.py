from __future__ import annotations

import json

import pytest

from integrations.client import base, feedback
from tests.integrations.client.conftest import TOKEN, oauth

GOOGLE = "https://www.googleapis.com/calendar/v3"
GRAPH = "https://graph.microsoft.com/v1.0"
SLACK = "https://slack.com/api"

__all__ = ["GOOGLE", "GRAPH", "SLACK", "TOKEN", "body_of", "oauth"]


@pytest.fixture(autouse=True)
def provider_apps(settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = "google-secret"
    settings.MICROSOFT_CLIENT_ID = "ms-client"
    settings.MICROSOFT_CLIENT_SECRET = "ms-secret"
    settings.SLACK_CLIENT_ID = "slack-client"
    settings.SLACK_CLIENT_SECRET = "slack-secret"
    settings.INTEGRATIONS_CLIENT_RETRY_BACKOFF_MS = 1
    settings.PUBLIC_BASE_URL = "https://hire.example.com"
    feedback.forget()
    base.forget()
    yield
    feedback.forget()


@pytest.fixture
def enqueued(monkeypatch):
    """The django-q2 tasks enqueued (name, args), not sent to a broker: the tests run them."""
    calls: list[tuple] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda name, *args, **kwargs: calls.append((name, *args)))
    return calls


def body_of(call) -> dict:
    return json.loads(call.request.body)
