"""`GET /api/integrations/{id}/usage/`: the figures equal the calls made (through the
client's after-call hook and the call log), percentiles included; bad parameters are 400;
another organization's integration is 404; the admin chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from integrations import calllog
from integrations.client import hooks
from integrations.models import ProviderCall
from integrations.usage import percentile
from tests.api_errors import error_fields

from .factories import IntegrationFactory

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def make_calls(integration, calls: list[tuple[str, str, int | None, float, str]], at: datetime) -> None:
    """Make calls through the after-call hook, then date them `at` (the log stamps now)."""
    started = timezone.now()
    for method, path, status, duration, error_kind in calls:
        hooks.after_call(
            hooks.CallRecord(
                integration_id=integration.pk,
                organization_id=integration.organization_id,
                method=method,
                path=path,
                status=status,
                duration_ms=duration,
                bytes=100,
                waited_ms=1.5,
                error_kind=error_kind,
            )
        )
    calllog.flush()
    ProviderCall.objects.filter(integration=integration, created_at__gte=started).update(created_at=at)


def usage(client, integration, **params):
    return client.get(f"/api/integrations/{integration.pk}/usage/", params)


@pytest.fixture
def base_hour():
    return (timezone.now() - timedelta(hours=5)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def integration(organization):
    return IntegrationFactory(organization=organization)


def test_usage_equals_the_calls_made(api_client, integration, base_hour, django_assert_max_num_queries):
    # Hour 0: 100 reads of one user each with a different id (1..100 ms), 2 of them 429s.
    reads = [("GET", f"/v1/users/{n}?fields=a", 429 if n > 98 else 200, float(n), "") for n in range(1, 101)]
    make_calls(integration, reads, base_hour + timedelta(minutes=5))
    # Hour 2: 3 writes, one timed out, one a 500.
    writes = [
        ("POST", "/v1/users", 201, 40.0, ""),
        ("POST", "/v1/users", None, 10_000.0, "timeout"),
        ("POST", "/v1/users", 500, 20.0, "http_error"),
    ]
    make_calls(integration, writes, base_hour + 2 * HOUR + timedelta(minutes=30))
    # Outside the window, and another integration: not counted.
    make_calls(integration, [("GET", "/v1/me", 200, 1.0, "")], base_hour - 3 * HOUR)
    make_calls(IntegrationFactory(organization=integration.organization), reads[:5], base_hour)

    with django_assert_max_num_queries(8):
        response = usage(
            api_client,
            integration,
            since=base_hour.isoformat(),
            until=(base_hour + 4 * HOUR).isoformat(),
            interval="hour",
        )
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    durations = sorted([float(n) for n in range(1, 101)] + [40.0, 10_000.0, 20.0])
    assert body["totals"] == {
        "calls": 103,
        "errors": 4,  # two 429s, the timeout, the 500
        "rate_limited": 2,
        "waited_ms": 103 * 1.5,
        "p50_ms": percentile(durations, 0.5),
        "p95_ms": percentile(durations, 0.95),
    }
    assert body["totals"]["p50_ms"] == 50.0
    endpoints = {row["endpoint"]: row for row in body["endpoints"]}
    assert list(endpoints) == ["GET /v1/users/{id}", "POST /v1/users"]
    assert endpoints["GET /v1/users/{id}"]["calls"] == 100
    assert endpoints["GET /v1/users/{id}"]["p50_ms"] == 50.5
    assert endpoints["GET /v1/users/{id}"]["p95_ms"] == 95.05
    assert (endpoints["POST /v1/users"]["errors"], endpoints["POST /v1/users"]["p50_ms"]) == (2, 40.0)
    buckets = body["buckets"]
    assert [bucket["calls"] for bucket in buckets] == [100, 0, 3, 0]
    assert [bucket["rate_limited"] for bucket in buckets] == [2, 0, 0, 0]
    assert buckets[0]["p95_ms"] == 95.05 and buckets[1]["p50_ms"] is None
    assert datetime.fromisoformat(buckets[2]["start"].replace("Z", "+00:00")) == base_hour + 2 * HOUR


def test_usage_by_day_defaults_to_30_days(api_client, integration):
    now = timezone.now()
    make_calls(integration, [("GET", "/v1/me", 200, 5.0, "")] * 2, now - timedelta(days=3))
    body = usage(api_client, integration, interval="day").json()
    assert len(body["buckets"]) in (30, 31)
    assert body["totals"]["calls"] == 2
    assert sum(bucket["calls"] for bucket in body["buckets"]) == 2


def test_usage_defaults_to_the_last_24_hours_by_hour(api_client, integration):
    make_calls(integration, [("GET", "/v1/me", 200, 5.0, "")], timezone.now() - timedelta(minutes=10))
    body = usage(api_client, integration).json()
    assert body["interval"] == "hour"
    assert len(body["buckets"]) in (24, 25)
    assert body["totals"]["calls"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"interval": "week"},
        {"since": "yesterday"},
        {"until": "2026-13-01T00:00:00Z"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z", "interval": "hour"},
    ],
)
def test_bad_parameters_are_a_json_400(api_client, integration, params):
    response = usage(api_client, integration, **params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"].startswith("application/json")
    assert error_fields(response) & {"since", "until", "interval"}


def test_another_organizations_integration_is_404(other_client, integration):
    assert usage(other_client, integration).status_code == HTTPStatus.NOT_FOUND


def test_read_only_keys_may_read_usage(read_only_client, integration):
    assert usage(read_only_client, integration).status_code == HTTPStatus.OK


def test_usage_is_in_the_openapi_schema(anon_client):
    schema = anon_client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/integrations/{id}/usage/"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"since", "until", "interval"}
    assert "400" in operation["responses"]


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.05


def test_the_admin_change_page_shows_a_usage_chart(admin_client, integration):
    make_calls(
        integration,
        [("GET", "/v1/me", 200, 5.0, ""), ("GET", "/v1/me", 500, 5.0, "http_error")],
        timezone.now() - timedelta(minutes=5),
    )
    page = admin_client.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()
    assert "<svg" in page and 'aria-label="provider calls per hour"' in page
    assert "2 call(s), 1 error(s)" in page
    assert "cdn" not in page.lower().split("<svg", 1)[1].split("</svg>", 1)[0]
