"""The client, the shared rate limits and the call log together (issue "Use a connection"):
calls made through `integration_client` are what the usage endpoint reports, and a
provider's 429 with `Retry-After` pauses the integration's shared bucket, so the next call
waits or is refused instead of hammering the provider."""

from __future__ import annotations

from http import HTTPStatus

import pytest
import responses

from integrations import calllog, ratelimit
from integrations.client import ProviderError, RateLimited, integration_client

from .conftest import KEY, api_key

pytestmark = pytest.mark.django_db

BASE = "https://api.example.com/v2"


@pytest.fixture
def custom(organization):
    return api_key(
        organization,
        "custom",
        config={"api_base_url": BASE + "/", "category": "hris"},
        credentials={"token": KEY},
    )


def test_the_usage_endpoint_reports_the_calls_made_through_the_client(api_client, custom, settings):
    settings.INTEGRATIONS_CLIENT_RETRIES = 0  # one HTTP request per call: the count is exact
    client = integration_client(custom)
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/employees", json={"items": []})
        mock.get(f"{BASE}/employees/42", json={"error": "boom"}, status=500)
        mock.get(f"{BASE}/reports", json={}, status=429, headers={"Retry-After": "0"})
        for _ in range(3):
            client.get("employees")
        with pytest.raises(ProviderError):
            client.get("employees/42")
        with pytest.raises(RateLimited):
            client.get("reports")
    calllog.flush()  # the test settings write the call log only when asked
    response = api_client.get(f"/api/integrations/{custom.pk}/usage/")
    assert response.status_code == HTTPStatus.OK
    totals = response.json()["totals"]
    assert (totals["calls"], totals["errors"], totals["rate_limited"]) == (5, 2, 1)
    endpoints = {row["endpoint"]: row["calls"] for row in response.json()["endpoints"]}
    assert endpoints == {"GET /employees": 3, "GET /employees/{id}": 1, "GET /reports": 1}


def test_a_providers_retry_after_pauses_the_shared_bucket(custom, settings):
    settings.INTEGRATIONS_CLIENT_RETRIES = 0
    settings.INTEGRATIONS_RATE_LIMITS_ENABLED = True
    settings.INTEGRATIONS_RATE_LIMIT_MAX_WAIT_SECONDS = 1
    ratelimit.reset(custom)
    client = integration_client(custom)
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/reports", json={}, status=429, headers={"Retry-After": "120"})
        with pytest.raises(RateLimited):
            client.get("reports")
        # The provider asked for two minutes: the next call is refused by our own limiter
        # (nothing sent: the mock has no second answer), telling when to retry.
        with pytest.raises(RateLimited) as refused:
            client.get("reports")
        assert len(mock.calls) == 1
    assert refused.value.retry_after is not None and 100 < refused.value.retry_after <= 121
    assert refused.value.status is None  # ours, not the provider's answer
    ratelimit.reset(custom)
