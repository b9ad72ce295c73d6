"""The stats endpoint builds its body by hand (webhooks/api/rows.py `stats_body`): byte for
byte what `WebhookStatsSerializer` gives, for a webhook with no attempts (nulls), with
successes, failures and pending deliveries, in every window, in another time zone and
with another datetime format; and it reads the webhook through `selectors.webhook_get`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from tests.webhooks.receiver import Reply
from webhooks import selectors, tasks
from webhooks.api.rows import stats_body
from webhooks.api.serializers import WebhookStatsSerializer
from webhooks.models import Webhook
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db
BASE = "/api/integrations/webhooks/"


def rendered(data) -> bytes:
    return JSONRenderer().render(data)


def assert_body_equals_the_serializer(stats: dict) -> None:
    want = WebhookStatsSerializer(stats).data
    have = stats_body(stats)
    assert list(have) == list(want)  # the keys, in order
    assert list(have["window_stats"]) == list(want["window_stats"])
    assert rendered(have) == rendered(want)


@pytest.fixture
def busy_webhook(organization, receiver):
    """Successes and failures (latencies, durations, a last failure), and a failed delivery."""

    def respond(received):
        return Reply(503, b"no") if received.json()["data"].get("fail") else Reply(200, b"ok")

    receiver.responder = respond
    hook = webhook_create(organization=organization, name="busy", url=receiver.url, events=["*"], retry_attempts=0)
    for n in range(4):
        trigger_event(organization=organization, event="job.opened", payload={"job": {"id": f"j{n}"}})
    trigger_event(organization=organization, event="job.opened", payload={"job": {"id": "f"}, "fail": True})
    tasks.deliver_due()
    return Webhook.objects.get(pk=hook.pk)


@pytest.mark.parametrize("window", list(selectors.STATS_WINDOWS))
def test_the_body_equals_the_serializer_byte_for_byte(busy_webhook, window):
    stats = selectors.webhook_stats(webhook=busy_webhook, window=window)
    assert stats["window_stats"]["failures"] == 1 and stats["window_stats"]["p95_latency_ms"] is not None
    assert stats["last_success_at"] and stats["last_failure_at"] and stats["failed_deliveries"] == 1
    assert_body_equals_the_serializer(stats)


def test_a_webhook_without_attempts_reads_nulls_like_the_serializer(webhook):
    stats = selectors.webhook_stats(webhook=webhook)
    assert stats["success_rate"] is None and stats["last_success_at"] is None
    assert stats["window_stats"]["mean_latency_ms"] is None
    assert_body_equals_the_serializer(stats)


def test_values_of_other_types_are_converted_like_the_serializer():
    """SUM() of a bigint column is a numeric (Decimal) on PostgreSQL; ints in float fields."""
    window = {
        "attempts": Decimal(7),
        "successes": 6,
        "failures": Decimal("1"),
        "success_rate": Decimal("0.8571"),
        "mean_duration_ms": 12,
        "p50_duration_ms": None,
        "p95_duration_ms": 3.5,
        "delivered": Decimal(6),
        "mean_latency_ms": Decimal("10.125"),
        "p50_latency_ms": 8,
        "p95_latency_ms": None,
    }
    stats = {
        **window,
        "window": "7d",
        "window_stats": dict(window),
        "last_24h": {**window, "attempts": 0, "success_rate": None},
        "pending_deliveries": Decimal(3),
        "failed_deliveries": 0,
        "consecutive_failures": 2,
        "last_success_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "last_failure_at": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    }
    assert_body_equals_the_serializer(stats)
    with timezone.override("America/Sao_Paulo"):
        assert_body_equals_the_serializer(stats)
        assert "-03:00" in rendered(stats_body(stats)).decode()


def test_the_body_follows_the_datetime_format_like_the_serializer(busy_webhook, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATETIME_FORMAT": "%d/%m/%Y %H:%M"}
    stats = selectors.webhook_stats(webhook=busy_webhook)
    assert_body_equals_the_serializer(stats)
    assert timezone.now().strftime("%d/%m/%Y") in rendered(stats_body(stats)).decode()


def test_the_endpoint_answers_the_serializer_body(api_client, busy_webhook):
    for query in ("", "?window=30d"):
        body = api_client.get(f"{BASE}{busy_webhook.pk}/stats/{query}").content
        stats = selectors.webhook_stats(webhook=busy_webhook, window=query.partition("=")[2] or "24h")
        assert body == rendered(WebhookStatsSerializer(stats).data)


def test_webhook_get_loads_only_its_fields_of_the_organizations_webhook(busy_webhook, organization, other_organization):
    found = selectors.webhook_get(organization=organization, pk=busy_webhook.pk, fields=selectors.WEBHOOK_STATS_FIELDS)
    assert found is not None and found.pk == busy_webhook.pk
    # The counters and times of the stats answer, and nothing else (no encrypted column).
    assert {"success_count", "last_failure_at"} <= set(selectors.WEBHOOK_STATS_FIELDS)
    assert found.get_deferred_fields() == {f.attname for f in Webhook._meta.concrete_fields} - set(
        selectors.WEBHOOK_STATS_FIELDS
    )
    assert "secret" in found.get_deferred_fields()
    for name in selectors.WEBHOOK_STATS_FIELDS:
        assert getattr(found, name) == getattr(busy_webhook, name)
    fields = selectors.WEBHOOK_LOG_FIELDS
    assert selectors.webhook_get(organization=other_organization, pk=busy_webhook.pk, fields=fields) is None
    assert selectors.webhook_get(organization=organization, pk=uuid.uuid4(), fields=fields) is None


@pytest.mark.parametrize("action", ["logs", "stats"])
def test_another_organizations_or_an_unknown_webhook_is_not_found(api_client, other_client, busy_webhook, action):
    assert api_client.get(f"{BASE}{busy_webhook.pk}/{action}/").status_code == HTTPStatus.OK
    assert api_client.get(f"{BASE}{busy_webhook.pk.hex}/{action}/").status_code == HTTPStatus.OK  # no hyphens
    assert other_client.get(f"{BASE}{busy_webhook.pk}/{action}/").status_code == HTTPStatus.NOT_FOUND
    missing = api_client.get(f"{BASE}{uuid.uuid4()}/{action}/")
    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert missing.json() == other_client.get(f"{BASE}{busy_webhook.pk}/{action}/").json()
