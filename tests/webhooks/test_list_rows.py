"""The logs and webhook lists build their rows by hand (webhooks/api/rows.py): byte-for-byte
what `WebhookLogSerializer` and `WebhookSerializer` give, for rows of every kind, with a
constant number of queries."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from tests.webhooks.receiver import Reply
from webhooks import selectors, tasks
from webhooks.api.rows import log_rows, webhook_rows
from webhooks.api.serializers import WebhookLogSerializer, WebhookSerializer
from webhooks.masking import payloads_by_delivery
from webhooks.models import Delivery, Webhook, WebhookLog
from webhooks.schemas import CATALOGUE_EXAMPLES, MASK
from webhooks.selectors import LOG_COLUMNS
from webhooks.services import event_type_create, log_replay, trigger_event, webhook_create

pytestmark = pytest.mark.django_db
BASE = "/api/integrations/webhooks/"
EMAIL = 'zoë."quoted"@example.net'  # escaped differently in the JSON a receiver echoes


@pytest.fixture
def logs_of_every_kind(organization, receiver):
    """Successes echoing sensitive values (catalogue and custom types), failures, masked
    custom headers, a transformed delivery, a replay, and rows the engine no longer writes
    (no response, a legacy row with every header stored, a whole-second timestamp)."""

    def respond(received):
        data = received.json()["data"]
        if data.get("fail"):
            return Reply(503, b"try later")
        if data.get("empty"):
            return Reply(204, b"")
        return Reply(200, received.body)  # echoes the payload back

    receiver.responder = respond
    hook = webhook_create(
        organization=organization,
        name="ATS",
        url=receiver.url,
        events=["*"],
        retry_attempts=0,
        headers={"Authorization": "Bearer s3cr3t-token", "X-Team": "hiring"},
    )
    transformed = webhook_create(
        organization=organization,
        name="transformed",
        url=receiver.url,
        events=["offer.sent"],
        retry_attempts=0,
        transform="data.candidate",
    )
    payload = copy.deepcopy(CATALOGUE_EXAMPLES["offer.sent"])
    payload["candidate"].update(email=EMAIL, first_name="Augusta")
    payload["offer"]["salary"] = 123456
    trigger_event(organization=organization, event="offer.sent", payload=payload)
    event_type_create(
        organization=organization,
        name="custom.assessment",
        schema={"type": "object", "properties": {"score_note": {"type": "string", "x-sensitive": True}}},
    )
    trigger_event(organization=organization, event="custom.assessment", payload={"score_note": "weak at sql"})
    trigger_event(organization=organization, event="custom.assessment", payload={"score_note": "ok", "fail": True})
    trigger_event(organization=organization, event="job.opened", payload={"empty": True, "job": {"id": "j1"}})
    tasks.deliver_due()
    log_replay(log=WebhookLog.objects.get(webhook=hook, event_type="offer.sent"))

    delivery = Delivery.objects.filter(webhook=hook).first()
    common = {
        "organization": organization,
        "webhook": hook,
        "delivery": delivery,
        "event_type": "job.opened",
        "request_url": receiver.url,
    }
    WebhookLog.objects.create(
        **common,
        attempt=2,
        response_status=None,
        response_body="",
        duration_ms=15000,
        error="Timed out after 15 s",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    WebhookLog.objects.create(
        **common,
        attempt=1,
        custom_headers={
            "content-type": "application/json; charset=utf-8",
            "webhook-id": "msg_legacy",
            "webhook-timestamp": "1700000000",
            "webhook-signature": "v1,legacy",
            "x-legacy": "kept",
        },
        response_status=200,
        response_body="fine",
        duration_ms=1.25,
        success=True,
        created_at=timezone.now() - timedelta(days=3, microseconds=7),
    )
    logs = WebhookLog.objects.all()
    assert {log.webhook_id for log in logs} == {hook.pk, transformed.pk}
    assert logs.filter(success=False, response_status=503).exists() and logs.filter(response_status=204).exists()
    assert logs.filter(webhook=hook, event_type="offer.sent").count() == 2  # the replay
    assert any(EMAIL in log.response_body or "Augusta" in log.response_body for log in logs)
    return hook


def rendered(data) -> bytes:
    return JSONRenderer().render(data)


def assert_rows_equal_the_serializer() -> None:
    ordered = WebhookLog.objects.order_by("-created_at", "-id")
    expected = WebhookLogSerializer(list(ordered), many=True).data
    built = log_rows(list(ordered.values(*LOG_COLUMNS)))
    assert len(built) == WebhookLog.objects.count() == 8
    for want, have in zip(expected, built, strict=True):
        assert list(have) == list(want)  # the keys, in order
        assert rendered(have) == rendered(want)
    assert rendered(built) == rendered(expected)


def test_rows_equal_the_serializer_byte_for_byte(logs_of_every_kind):
    assert_rows_equal_the_serializer()
    text = rendered(log_rows(list(WebhookLog.objects.values(*LOG_COLUMNS)))).decode()
    for secret in ("Augusta", "123456", "weak at sql", "s3cr3t-token", EMAIL, "zo\\u00eb"):
        assert secret not in text, secret
    assert MASK in text and "x-legacy" in text and "hiring" in text


def test_rows_equal_the_serializer_in_another_time_zone(logs_of_every_kind):
    with timezone.override("America/Sao_Paulo"):
        assert_rows_equal_the_serializer()
        assert "-03:00" in rendered(log_rows(list(WebhookLog.objects.values(*LOG_COLUMNS)))).decode()


def test_rows_equal_the_serializer_with_another_datetime_format(logs_of_every_kind, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATETIME_FORMAT": "%d/%m/%Y %H:%M"}
    assert_rows_equal_the_serializer()
    assert "02/01/2026 03:04" in rendered(log_rows(list(WebhookLog.objects.values(*LOG_COLUMNS)))).decode()


def test_the_logs_page_is_the_serializer_output_page_after_page(api_client, logs_of_every_kind):
    hook = logs_of_every_kind
    expected = WebhookLogSerializer(
        list(WebhookLog.objects.filter(webhook=hook).order_by("-created_at", "-id")), many=True
    ).data
    shown, url = [], f"{BASE}{hook.pk}/logs/?page_size=3"
    while url:
        response = api_client.get(url)
        assert response.status_code == HTTPStatus.OK
        shown.extend(response.json()["results"])
        url = response.json()["next"]
    assert shown == [dict(row) for row in expected] and len(shown) == 7


def test_queries_per_page_stay_constant(api_client, organization, logs_of_every_kind):
    """Auth, the webhook, the page, the payloads it masks, the custom type's schema: the
    same count for a page of a few rows as for a full page of 50 with more sensitive rows."""
    hook = logs_of_every_kind
    url = f"{BASE}{hook.pk}/logs/"

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api_client.get(url).status_code == HTTPStatus.OK
        return len(captured.captured_queries)

    api_client.get(url)  # the API key's `last_used_at` is written at most once a minute
    few = count()
    delivery = Delivery.objects.get(webhook=hook, event__payload__score_note="weak at sql")
    WebhookLog.objects.bulk_create(
        WebhookLog(
            id=uuid.uuid4(),
            organization=organization,
            webhook=hook,
            delivery=delivery,
            event_type="custom.assessment",
            attempt=n,
            request_url="https://example.com/hook",
            response_body=f'{{"note": "weak at sql {n}"}}',
            created_at=timezone.now() + timedelta(seconds=n),
        )
        for n in range(60)
    )
    assert count() == few
    text = api_client.get(url).content.decode()
    assert "weak at sql" not in text and len(api_client.get(url).json()["results"]) == 50


def test_the_page_selector_reads_what_the_orm_reads(logs_of_every_kind):
    """`webhook_log_page` writes its statement out on PostgreSQL: the same rows, values and
    order as the ORM's `webhook_log_list(...).values(...)` for every filter and any key."""
    hook = logs_of_every_kind
    ordered = list(WebhookLog.objects.filter(webhook=hook).order_by("-created_at", "-id"))
    middle = ordered[3]
    keys = [None, (middle.created_at, middle.pk), (ordered[-1].created_at, ordered[-1].pk)]
    filters = [
        {},
        {"success": True},
        {"success": False},
        {"event": "custom.assessment"},
        {"event": ""},
        {"since": middle.created_at},
        {"until": middle.created_at},
        {"since": ordered[-1].created_at, "until": ordered[1].created_at, "success": False},
    ]
    for after in keys:
        for given in filters:
            logs = selectors.webhook_log_list(webhook=hook, **given)
            if after is not None:
                logs = logs.filter(created_at__lte=after[0]).exclude(created_at=after[0], pk__gte=after[1])
            for limit in (1, 4, 51):
                want = list(logs.values(*LOG_COLUMNS)[:limit])
                assert selectors.webhook_log_page(webhook=hook, after=after, limit=limit, **given) == want
    assert selectors.webhook_log_page(webhook=hook, limit=51, success=False)  # the cases are not all empty
    deliveries = list(Delivery.objects.values_list("pk", flat=True))
    assert payloads_by_delivery(deliveries) == dict(Delivery.objects.values_list("pk", "event__payload"))
    assert payloads_by_delivery([]) == {}


@pytest.fixture
def webhooks_of_every_kind(organization, receiver, use_fernet_keys, settings):
    """Plain, with sensitive headers, an integration, flow limits, a filter and a transform,
    OAuth2 settings, a client certificate's expiry, disabled with counters, and one whose
    headers and secret no key in FERNET_KEYS decrypts any more."""
    from integrations.services import integration_create

    integration = integration_create(
        organization=organization, name="HR", provider="rippling", auth_type="api_key", credentials={"api_key": "k"}
    )
    base = {"organization": organization, "url": receiver.url, "events": ["*"]}
    webhook_create(**base, name="plain")
    webhook_create(
        **base,
        name="controls",
        headers={"Authorization": "Bearer s3cr3t-token", "X-Team": "hiring"},
        integration=integration,
        rate_limit=2.5,
        max_concurrency=3,
        ordered=True,
        filter={"data.job.department": {"$in": ["engineering"]}},
        transform="data.candidate",
    )
    oauth = webhook_create(
        **base,
        name="oauth",
        auth={
            "type": "oauth2_client_credentials",
            "token_url": receiver.url,
            "client_id": "our-client",
            "client_secret": "client-s3cr3t",
        },
    )
    Webhook.objects.filter(pk=oauth.pk).update(
        client_certificate_expires_at=datetime(2027, 5, 6, 7, 8, 9, 123, tzinfo=UTC),
        is_active=False,
        disabled_at=timezone.now(),
        disabled_reason="Disabled after 50 consecutive failures.",
        success_count=12,
        failure_count=50,
        consecutive_failures=50,
        last_failure_at=timezone.now(),
    )
    old_key = settings.FERNET_KEYS[0]
    use_fernet_keys(["another-key"])
    webhook_create(**base, name="new key", headers={"X-Api-Key": "k-123"})
    use_fernet_keys([old_key])  # the webhook written under "another-key" cannot be read
    return organization


def test_webhook_rows_equal_the_serializer_byte_for_byte(webhooks_of_every_kind):
    webhooks = list(selectors.webhook_list(organization=webhooks_of_every_kind).order_by("name"))
    expected = WebhookSerializer(webhooks, many=True).data
    built = webhook_rows(webhooks)
    assert len(built) == 4
    for want, have in zip(expected, built, strict=True):
        assert list(have) == list(want)
        assert rendered(have) == rendered(want)
    text = rendered(built).decode()
    assert "s3cr3t" not in text and "k-123" not in text and '"secret_readable":false' in text
    assert '"client_secret_set":true' in text and '"integration":null' in text and "2027-05-06T07:08:09.000123Z" in text
    with timezone.override("Asia/Kolkata"):
        assert rendered(webhook_rows(webhooks)) == rendered(WebhookSerializer(webhooks, many=True).data)


def test_the_webhook_list_is_the_serializer_output(api_client, webhooks_of_every_kind, django_assert_num_queries):
    api_client.get(BASE)  # the API key's `last_used_at` is written at most once a minute
    with django_assert_num_queries(3):  # the key, the count, the page
        response = api_client.get(f"{BASE}?page_size=3")
    assert response.status_code == HTTPStatus.OK and response.json()["count"] == 4
    webhooks = list(selectors.webhook_list(organization=webhooks_of_every_kind)[:3])
    assert response.json()["results"] == [dict(row) for row in WebhookSerializer(webhooks, many=True).data]


def test_payloads_are_read_near_their_attempt_and_by_id_alone_for_what_that_misses(organization, webhook):
    """A delivery made by a trigger shares its event's `created_at` and is found around its
    attempt's time (one statement); one whose event was stored apart (a test send) or whose
    attempt is days after it (a replay) is then found by id alone (a second statement)."""
    from webhooks.models import Event

    now = timezone.now()
    near = [trigger_event(organization=organization, event="application.created", payload={"n": n}) for n in range(3)]
    near_ids = list(Delivery.objects.filter(event__in=near).values_list("pk", flat=True))
    assert len(near_ids) == 3
    apart_event = Event.objects.create(organization=organization, type="application.created", payload={"n": "apart"})
    apart = Delivery.objects.create(
        organization=organization, event=apart_event, webhook=webhook, max_attempts=1, next_attempt_at=now
    )
    old = Delivery.objects.get(pk=near_ids[0])
    Delivery.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=3))
    Event.objects.filter(pk=old.event_id).update(created_at=now - timedelta(days=3))
    expected = dict(Delivery.objects.values_list("pk", "event__payload"))
    assert len({str(payload) for payload in expected.values()}) == 4

    with CaptureQueriesContext(connection) as fresh:
        assert payloads_by_delivery(near_ids[1:], {pk: now for pk in near_ids[1:]}) == {
            pk: expected[pk] for pk in near_ids[1:]
        }
    everything = [*near_ids, apart.pk]
    with CaptureQueriesContext(connection) as missed:
        assert payloads_by_delivery(everything, {pk: now for pk in everything}) == expected
    if connection.vendor == "postgresql":
        assert len(fresh.captured_queries) == 1
        assert len(missed.captured_queries) == 2
