"""The limiter and call-log hooks see every request; issues are fed without a query per call."""

from __future__ import annotations

import pytest
import responses

from integrations.client import ProviderError, RateLimited, hooks, integration_client
from integrations.issues import issue_detected
from integrations.models import ConnectionIssue

from .conftest import api_key, oauth

pytestmark = pytest.mark.django_db

URL = "https://api.rippling.com/platform/api/me"


def test_after_call_gets_one_record_per_request_with_secret_params_masked(organization, records, sleeps):
    integration = api_key(organization)
    with responses.RequestsMock() as mock:
        mock.get(URL, status=503)
        mock.get(URL, json={"id": 1})
        integration_client(integration).get(
            "platform/api/me", params={"access_token": "leak", "q": "x", "api_key": "k"}
        )
    assert [(r.status, r.attempt, r.error_kind) for r in records] == [(503, 1, "provider_unavailable"), (200, 2, "")]
    record = records[-1]
    assert record.path == "platform/api/me?access_token=%2A%2A%2A&q=x&api_key=%2A%2A%2A"
    assert "leak" not in record.path
    assert (record.integration_id, record.organization_id, record.method) == (
        integration.pk,
        organization.pk,
        "GET",
    )
    assert record.bytes == len(b'{"id": 1}') and record.duration_ms >= 0 and record.waited_ms == 0


def test_before_call_wait_is_recorded_and_can_refuse(organization, records):
    calls = []

    def limiter(integration, method, path):
        calls.append((integration.pk, method, path))
        if len(calls) > 1:
            raise RateLimited("local bucket empty", retry_after=1.5, status=None)
        return 40

    hooks.register_before_call(limiter)
    try:
        integration = api_key(organization)
        with responses.RequestsMock() as mock:
            mock.get(URL, json={})
            integration_client(integration).get("platform/api/me", params={"x": 1})
            with pytest.raises(RateLimited) as caught:
                integration_client(integration).get("platform/api/me")
    finally:
        hooks.unregister(limiter)
    assert calls[0] == (integration.pk, "GET", "platform/api/me")
    assert records[0].waited_ms == 40 and caught.value.retry_after == 1.5


def test_a_failing_after_call_hook_does_not_fail_the_call(organization, caplog):
    def broken(record):
        raise RuntimeError("log down")

    hooks.register_after_call(broken)
    try:
        with responses.RequestsMock() as mock:
            mock.get(URL, json={"ok": 1})
            assert integration_client(api_key(organization)).get("platform/api/me") == {"ok": 1}
    finally:
        hooks.unregister(broken)
    assert "after_call hook" in caplog.text


def test_healthy_calls_cost_one_query_per_ttl_not_per_call(organization, django_assert_num_queries):
    integration = api_key(organization)
    client = integration_client(integration)
    with responses.RequestsMock() as mock:
        mock.get(URL, json={})
        with django_assert_num_queries(1):  # is there an issue to clear? (indexed)
            client.get("platform/api/me")
        with django_assert_num_queries(0):
            for _ in range(5):
                client.get("platform/api/me")


def test_5xx_opens_provider_unavailable_after_three_and_successes_resolve_it(organization, sleeps, settings):
    settings.INTEGRATIONS_CLIENT_RETRIES = 0
    integration = oauth(organization, "microsoft_outlook")
    client = integration_client(integration)
    url = "https://graph.microsoft.com/v1.0/me"
    with responses.RequestsMock() as mock:
        mock.get(url, status=503)
        for _ in range(3):
            with pytest.raises(ProviderError):
                client.get("me")
    issue = ConnectionIssue.objects.get(integration=integration, kind="provider_unavailable")
    assert issue.status == "open"
    with responses.RequestsMock() as mock:
        mock.get(url, json={})
        for _ in range(3):
            client.get("me")
    issue.refresh_from_db()
    assert issue.status == "resolved"


def test_an_issue_opened_elsewhere_is_cleared_once_the_ttl_passes(organization, settings):
    settings.INTEGRATIONS_CLIENT_ISSUE_CHECK_TTL = 0
    settings.INTEGRATION_ISSUE_OPEN_AFTER = 1
    settings.INTEGRATION_ISSUE_RESOLVE_AFTER = 1
    integration = api_key(organization)
    client = integration_client(integration)
    with responses.RequestsMock() as mock:
        mock.get(URL, json={})
        client.get("platform/api/me")
        issue = issue_detected(integration=integration, kind="rate_limited", message="from a health run")
        client.get("platform/api/me")
    issue.refresh_from_db()
    assert issue.status == "resolved"


def test_429_is_reported_as_rate_limited(organization, settings):
    settings.INTEGRATION_ISSUE_OPEN_AFTER = 1
    integration = api_key(organization)
    with responses.RequestsMock() as mock:
        mock.post(URL, status=429, headers={"Retry-After": "3"})
        with pytest.raises(RateLimited):
            integration_client(integration).post("platform/api/me", json={})
    issue = ConnectionIssue.objects.get(integration=integration)
    assert (issue.kind, issue.status, issue.details) == ("rate_limited", "open", {"retry_after": 3.0})
