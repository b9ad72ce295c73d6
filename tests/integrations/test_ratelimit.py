"""Rate limits (integrations/ratelimit.py): shared buckets on both backends, the bound on
waiting, feedback from the provider's headers, and the catalogue's and config's limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path

import pytest

from integrations import providers, ratelimit
from integrations.client import hooks
from integrations.models import RateLimitBucket
from tests import cluster
from tests.api_errors import field_errors
from tests.concurrency import Concurrently

from .factories import IntegrationFactory

REDIS_URL = os.environ.get("H8_TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
NOW = 1_800_000_000
WORKER = Path(__file__).with_name("limiter_worker.py")


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    """Each test runs on both backends: the database (no Redis URL) and Redis (db 8)."""
    settings.REDIS_URL = ""
    settings.INTEGRATIONS_RATE_LIMIT_REDIS_URL = REDIS_URL if request.param == "redis" else ""
    return request.param


def limited(rate_limit, **kwargs):
    return IntegrationFactory(config={"rate_limit": rate_limit}, **kwargs)


# --- limits: catalogue and config -------------------------------------------------------


def test_every_provider_documents_its_limits():
    for provider in providers.provider_list():
        assert provider.rate_limits, provider.name
        for limit in provider.rate_limits:
            assert limit.source, f"{provider.name}: a limit without a source"
            assert 1 <= limit.burst <= limit.requests


def test_docusign_has_its_hourly_and_burst_limits():
    limits = {limit.name: limit for limit in providers.get_provider("docusign").rate_limits}
    assert (limits["3600s"].requests, limits["30s"].requests) == (3000, 500)


@pytest.mark.django_db
def test_config_rate_limit_replaces_the_defaults():
    integration = limited([{"requests": 2, "per_seconds": 1}, {"requests": 100, "per_seconds": 60, "burst": 10}])
    limits = ratelimit.limits_for(integration)
    assert [(limit.requests, limit.per_seconds, limit.burst) for limit in limits] == [(2, 1, 1), (100, 60, 10)]
    assert ratelimit.limits_for(IntegrationFactory(provider="slack")) == providers.get_provider("slack").rate_limits


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        {"requests": 0, "per_seconds": 1},
        {"requests": -5, "per_seconds": 1},
        {"requests": "10", "per_seconds": 1},
        {"requests": True, "per_seconds": 1},
        {"requests": 10},
        {"requests": 10, "per_seconds": 1, "burst": 11},
        {"requests": 10, "per_seconds": 1, "every": 2},
        [],
        [{"requests": 1, "per_seconds": 1}, {"requests": 2, "per_seconds": 1}],
        "10/s",
    ],
)
def test_invalid_rate_limit_config_is_a_400(api_client, value):
    response = api_client.post(
        "/api/integrations/",
        {
            "name": "r",
            "provider": "rippling",
            "auth_type": "api_key",
            "config": {"rate_limit": value},
            "credentials": {"api_key": "k"},
        },
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "config.rate_limit" in field_errors(response)


@pytest.mark.django_db
def test_valid_rate_limit_config_is_stored(api_client):
    body = {
        "name": "r",
        "provider": "rippling",
        "auth_type": "api_key",
        "config": {"rate_limit": {"requests": 20, "per_seconds": 1, "burst": 5}},
        "credentials": {"api_key": "k"},
    }
    response = api_client.post("/api/integrations/", body, format="json")
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["config"]["rate_limit"] == {"requests": 20, "per_seconds": 1, "burst": 5}


def test_the_catalogue_api_lists_rate_limits(db, api_client):
    providers_by_name = {p["name"]: p for p in api_client.get("/api/integrations/providers/").json()}
    assert providers_by_name["hellosign"]["rate_limits"][0]["requests"] == 100
    assert "help.dropbox.com" in providers_by_name["hellosign"]["rate_limits"][0]["source"]


# --- the bound: wait, or raise ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_burst_passes_then_calls_wait_then_are_refused(backend):
    integration = limited({"requests": 3, "per_seconds": 30, "burst": 2})  # 2 at once, then one per 15 s
    assert ratelimit.acquire(integration, max_wait=0) == 0
    assert ratelimit.acquire(integration, max_wait=0) == 0
    with pytest.raises(ratelimit.RateLimitExceeded) as refused:
        ratelimit.acquire(integration, max_wait=1)
    assert 13 < refused.value.retry_after <= 15
    # Nothing was reserved by the refusal: the next slot is still ~15 s away, not 30.
    with pytest.raises(ratelimit.RateLimitExceeded) as again:
        ratelimit.acquire(integration, max_wait=1)
    assert again.value.retry_after <= 15


@pytest.mark.django_db(transaction=True)
def test_a_call_within_the_bound_waits_for_its_slot(backend):
    integration = limited({"requests": 10, "per_seconds": 1})  # one per 100 ms
    assert ratelimit.acquire(integration) == 0
    waited = ratelimit.acquire(integration, max_wait=5)
    assert 0 < waited <= 100


@pytest.mark.django_db(transaction=True)
def test_before_call_hook_raises_when_the_limit_is_exhausted(backend, settings):
    settings.INTEGRATIONS_RATE_LIMITS_ENABLED = True
    settings.INTEGRATIONS_RATE_LIMIT_MAX_WAIT_SECONDS = 0
    integration = limited({"requests": 1, "per_seconds": 60})
    assert hooks.before_call(integration, "GET", "/v1/me") == 0
    with pytest.raises(ratelimit.RateLimitExceeded):
        hooks.before_call(integration, "GET", "/v1/me")


@pytest.mark.django_db(transaction=True)
def test_limits_are_per_integration(backend):
    first, second = limited({"requests": 1, "per_seconds": 60}), limited({"requests": 1, "per_seconds": 60})
    ratelimit.acquire(first, max_wait=0)
    assert ratelimit.acquire(second, max_wait=0) == 0


@pytest.mark.django_db(transaction=True)
def test_every_limit_of_an_integration_must_have_room(backend):
    integration = limited([{"requests": 100, "per_seconds": 1, "burst": 100}, {"requests": 2, "per_seconds": 60}])
    ratelimit.acquire(integration, max_wait=0)
    with pytest.raises(ratelimit.RateLimitExceeded) as refused:
        ratelimit.acquire(integration, max_wait=0)
    assert refused.value.retry_after > 20  # the per-minute limit decides


# --- feedback from the provider -------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        ({"Retry-After": "30"}, 429, 30),
        ({"retry-after": "7"}, 503, 7),
        ({"Retry-After": formatdate(NOW + 60, usegmt=True)}, 429, 60),
        ({}, 429, ratelimit.DEFAULT_429_PAUSE),
        ({}, 503, None),
        ({"Retry-After": "30"}, 200, None),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(NOW + 45)}, 200, 45),  # a Unix time
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}, 200, 12),  # seconds
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "20"}, 200, 20),
        ({"RateLimit": "limit=100, remaining=0, reset=15"}, 200, 15),
        ({"RateLimit": '"default";r=0;t=9'}, 200, 9),
        ({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "12"}, 200, None),
        ({"X-RateLimit-Reset": "12"}, 429, 12),
    ],
)
def test_pause_from_headers(headers, status, expected):
    assert ratelimit.pause_from_headers(headers, status, now=NOW) == expected


@pytest.mark.django_db(transaction=True)
def test_retry_after_pauses_the_bucket(backend):
    integration = limited({"requests": 100, "per_seconds": 1, "burst": 100})
    assert ratelimit.feedback(integration, {"Retry-After": "30"}, 429) == 30
    with pytest.raises(ratelimit.RateLimitExceeded) as refused:
        ratelimit.acquire(integration, max_wait=1)
    assert 28 < refused.value.retry_after <= 30


@pytest.mark.django_db(transaction=True)
def test_remaining_zero_pauses_until_the_reset(backend):
    integration = limited({"requests": 100, "per_seconds": 1, "burst": 100})
    reset = int(time.time()) + 20
    ratelimit.feedback(integration, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, 200)
    with pytest.raises(ratelimit.RateLimitExceeded) as refused:
        ratelimit.acquire(integration, max_wait=1)
    assert 15 < refused.value.retry_after <= 21


@pytest.mark.django_db(transaction=True)
def test_a_pause_is_capped(backend, settings):
    settings.INTEGRATIONS_RATE_LIMIT_MAX_PAUSE_SECONDS = 5
    integration = limited({"requests": 100, "per_seconds": 1, "burst": 100})
    ratelimit.feedback(integration, {"Retry-After": "86400"}, 429)
    with pytest.raises(ratelimit.RateLimitExceeded) as refused:
        ratelimit.acquire(integration, max_wait=1)
    assert refused.value.retry_after <= 5


@pytest.mark.django_db(transaction=True)
def test_an_answer_with_quota_left_changes_nothing(backend):
    integration = limited({"requests": 1, "per_seconds": 60})
    assert ratelimit.feedback(integration, {"X-RateLimit-Remaining": "40"}, 200) is None
    assert ratelimit.acquire(integration, max_wait=0) == 0


# --- sharing: threads and real processes ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_lose_no_update():
    """Eight writers reserve at once on the database bucket: every reservation is counted
    (the final state is exactly eight intervals ahead) and no two share a slot."""
    integration = limited({"requests": 10, "per_seconds": 1, "burst": 10})
    waits: list[float] = []
    bucket = ratelimit.Bucket.of(ratelimit.limits_for(integration)[0])
    before = time.time_ns() // 1000

    def reserve():
        reserved, wait = ratelimit.DatabaseBackend().reserve(integration.pk, [bucket], 60 * 1_000_000)
        assert reserved
        waits.append(wait)

    with Concurrently(*[reserve] * 8):
        pass
    after = time.time_ns() // 1000
    tat = RateLimitBucket.objects.get(integration=integration).tat_us
    assert before + 8 * bucket.interval_us <= tat <= after + 8 * bucket.interval_us
    assert len(waits) == 8


def run_two_processes(integration, calls_each: int, backend: str, tmp_path) -> list[float]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": cluster.test_database_url(),
        "INTEGRATIONS_RATE_LIMIT_REDIS_URL": REDIS_URL if backend == "redis" else "",
    }
    env.pop("REDIS_URL", None)
    start_at = time.time() + 4  # both are set up by then
    outs = [tmp_path / f"worker-{n}.json" for n in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(integration.pk), str(calls_each), str(start_at), str(out)],
            cwd=cluster.ROOT,
            env=env,
        )
        for out in outs
    ]
    for worker in workers:
        assert worker.wait(120) == 0
    return sorted(t for out in outs for t in json.loads(out.read_text()))


def max_in_window(times: list[float], window: float) -> int:
    best, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_one_budget(backend, tmp_path):
    """Two real processes take 30 slots each from one bucket of 20 per second: together
    they never exceed it (one call of slack for the measurement), so the 60 calls take at
    least the ~3 s the budget allows."""
    integration = limited({"requests": 20, "per_seconds": 1})
    times = run_two_processes(integration, 30, backend, tmp_path)
    assert len(times) == 60
    assert max_in_window(times, 1.0) <= 21
    assert times[-1] - times[0] >= 59 / 20 - 0.1


def test_max_in_window():
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert max_in_window([], 1.0) == 0


def test_bucket_spacing_keeps_every_window_within_the_quota():
    """GCRA's parameters: N in any window of P seconds with B back to back."""
    bucket = ratelimit.Bucket.of(providers.RateLimit(50, 1, burst=1))
    assert (bucket.interval_us, bucket.tolerance_us) == (20_000, 0)
    bucket = ratelimit.Bucket.of(providers.RateLimit(3000, 3600, burst=50))
    # B at once, then N - B more in the window: (B - 1) * T of tolerance, T = P / (N - B + 1)
    assert bucket.interval_us == round(3600 / 2951 * 1_000_000)
    assert bucket.tolerance_us == round(49 * 3600 / 2951 * 1_000_000)


@pytest.mark.django_db
def test_an_unreachable_redis_lets_calls_through_and_warns(settings, caplog):
    settings.INTEGRATIONS_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    integration = limited({"requests": 1, "per_seconds": 60})
    with caplog.at_level("WARNING", logger="integrations.ratelimit"):
        assert ratelimit.acquire(integration, max_wait=0) == 0
        assert ratelimit.acquire(integration, max_wait=0) == 0
    assert "calls unlimited" in caplog.text


@pytest.mark.django_db
def test_the_documented_patch_with_a_list_of_limits(api_client):
    """docs/PROVIDERS.md "Rate limits": the PATCH example, as written."""
    integration = IntegrationFactory(
        organization=api_client.organization, provider="bamboohr", config={"company_domain": "acme"}
    )
    body = {
        "config": {
            "company_domain": "acme",
            "rate_limit": [{"requests": 2, "per_seconds": 1}, {"requests": 1000, "per_seconds": 3600, "burst": 20}],
        }
    }
    response = api_client.patch(f"/api/integrations/{integration.pk}/", body, format="json")
    assert response.status_code == HTTPStatus.OK
    integration.refresh_from_db()
    assert [limit.name for limit in ratelimit.limits_for(integration)] == ["1s", "3600s"]
