from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook as ReferenceVerifier

from tests.api_errors import error_fields, field_errors
from tests.conftest import make_key_client
from tests.webhooks.receiver import Reply
from webhooks import rollups, tasks
from webhooks.models import Delivery, Event, Webhook, WebhookHourlyStats, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db
BASE = "/api/integrations/webhooks/"


def test_create_returns_secret_once(api_client, receiver):
    response = api_client.post(
        BASE, {"name": "ATS", "url": receiver.url, "events": ["application.created", "offer.accepted"]}, format="json"
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["retry_attempts"] == 5 and body["is_active"] is True
    for path in [BASE, f"{BASE}{body['id']}/"]:
        assert body["secret"] not in api_client.get(path).content.decode()
    assert "secret" not in api_client.get(f"{BASE}{body['id']}/").json()


def test_create_with_own_secret_and_invalid_secret(api_client, receiver):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    response = api_client.post(
        BASE, {"name": "a", "url": receiver.url, "events": ["*"], "secret": secret}, format="json"
    )
    assert response.status_code == HTTPStatus.CREATED and response.json()["secret"] == secret
    response = api_client.post(
        BASE, {"name": "b", "url": receiver.url, "events": ["*"], "secret": "nope"}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST and "secret" in error_fields(response)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["no.such_event"]}, "events"),
        ({"events": []}, "events"),
        ({"retry_attempts": 11}, "retry_attempts"),
        ({"retry_attempts": -1}, "retry_attempts"),
        ({"url": "not a url"}, "url"),
        ({"headers": {"Host": "x"}}, "headers"),
        ({"headers": ["x"]}, "headers"),
    ],
)
def test_invalid_input_is_400_and_changes_nothing(api_client, webhook, body, field):
    base = {"name": "x", "url": "https://93.184.216.34/", "events": ["*"]}
    response = api_client.post(BASE, {**base, **body}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST and field in error_fields(response)
    response = api_client.patch(f"{BASE}{webhook.pk}/", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST and field in error_fields(response)
    assert Webhook.objects.count() == 1
    webhook.refresh_from_db()
    assert webhook.events == ["application.created"] and webhook.retry_attempts == 3


def test_update_and_delete(api_client, webhook):
    response = api_client.put(
        f"{BASE}{webhook.pk}/", {"name": "new", "url": webhook.url, "events": ["job.created"]}, format="json"
    )
    assert response.status_code == HTTPStatus.OK and response.json()["name"] == "new"
    assert api_client.delete(f"{BASE}{webhook.pk}").status_code == HTTPStatus.NO_CONTENT
    assert not Webhook.objects.exists()


def test_sensitive_header_values_are_masked_and_kept(api_client, receiver):
    response = api_client.post(
        BASE,
        {"name": "a", "url": receiver.url, "events": ["*"], "headers": {"Authorization": "Bearer sentinel-xyz"}},
        format="json",
    )
    webhook_id = response.json()["id"]
    assert "sentinel-xyz" not in api_client.get(f"{BASE}{webhook_id}/").content.decode()
    body = api_client.get(f"{BASE}{webhook_id}/").json()
    api_client.put(f"{BASE}{webhook_id}/", body, format="json")
    assert Webhook.objects.get().headers == {"Authorization": "Bearer sentinel-xyz"}


def test_test_endpoint_sends_now_and_returns_the_attempt(api_client, webhook, receiver):
    response = api_client.post(f"{BASE}{webhook.pk}/test/")
    assert response.status_code == HTTPStatus.OK
    attempt = response.json()
    assert attempt["success"] is True and attempt["status"] == 200 and attempt["event"] == "webhook.test"
    assert attempt["duration_ms"] > 0 and attempt["error"] == ""
    [request] = receiver.wait_for(1)
    assert ReferenceVerifier(webhook.secret).verify(request.body, request.headers)["type"] == "webhook.test"

    receiver.default = Reply(status=500, body=b"down")
    attempt = api_client.post(f"{BASE}{webhook.pk}/test").json()
    assert attempt["success"] is False and attempt["status"] == 500 and attempt["error"] == "HTTP 500"
    assert attempt["response_body"] == "down"
    assert Delivery.objects.filter(event__type="webhook.test", state="failed").count() == 1  # no retries


def _failing_history(organization, webhook, receiver, count=3):
    receiver.responder = lambda r: Reply(status=500 if r.json()["data"].get("n", 0) % 2 else 200)
    for n in range(count):
        trigger_event(organization=organization, event="application.created", payload={"n": n})
    tasks.deliver_due()


def _all_pages(api_client, url, params=None):
    rows, pages = [], 0
    body = api_client.get(url, params or {}).json()
    while True:
        pages += 1
        assert "count" not in body  # no COUNT(*)
        rows += body["results"]
        if not body["next"]:
            return rows, pages
        body = api_client.get(body["next"]).json()


def test_logs_newest_first_with_filters_and_cursor_pagination(api_client, organization, webhook, receiver):
    _failing_history(organization, webhook, receiver, count=5)
    logs_url = f"{BASE}{webhook.pk}/logs/"
    body = api_client.get(logs_url).json()
    assert len(body["results"]) == 5 and body["next"] is None
    times = [row["created_at"] for row in body["results"]]
    assert times == sorted(times, reverse=True)
    assert len(_all_pages(api_client, logs_url, {"success": "false"})[0]) == 2
    assert len(_all_pages(api_client, logs_url, {"success": "true"})[0]) == 3
    assert len(_all_pages(api_client, logs_url, {"event": "job.created"})[0]) == 0
    assert len(_all_pages(api_client, logs_url, {"event": "application.created"})[0]) == 5
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert len(_all_pages(api_client, logs_url, {"since": future})[0]) == 0
    assert len(_all_pages(api_client, logs_url, {"until": future})[0]) == 5
    rows, pages = _all_pages(api_client, logs_url, {"page_size": 2})
    assert pages == 3 and [row["id"] for row in rows] == [row["id"] for row in body["results"]]
    # The filters ride along in the next link.
    rows, pages = _all_pages(api_client, logs_url, {"page_size": 1, "success": "true"})
    assert pages == 3 and all(row["success"] for row in rows)
    assert api_client.get(f"{BASE}{webhook.pk}/logs/?since=yesterday").status_code == HTTPStatus.BAD_REQUEST
    assert api_client.get(f"{BASE}{webhook.pk}/logs/?success=maybe").status_code == HTTPStatus.BAD_REQUEST
    assert api_client.get(f"{BASE}{webhook.pk}/logs/?page=2").status_code == HTTPStatus.BAD_REQUEST


def test_list_endpoints_run_constant_queries(api_client, organization, receiver, django_assert_max_num_queries):
    for index in range(30):
        webhook_create(organization=organization, name=f"w{index}", url=receiver.url, events=["*"])
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    webhook = Webhook.objects.first()
    api_client.get(BASE)  # records the key's first use
    with django_assert_max_num_queries(3):
        assert len(api_client.get(f"{BASE}?page_size=100").json()["results"]) == 30
    with django_assert_max_num_queries(4):
        api_client.get(f"{BASE}{webhook.pk}/logs/?page_size=100")


def test_stats(api_client, organization, webhook, receiver):
    _failing_history(organization, webhook, receiver, count=4)
    stats = api_client.get(f"{BASE}{webhook.pk}/stats/").json()
    assert stats["attempts"] == 4 and stats["successes"] == 2 and stats["failures"] == 2
    assert stats["success_rate"] == 0.5
    assert stats["last_24h"]["attempts"] == 4
    assert stats["window"] == "24h" and stats["window_stats"] == stats["last_24h"]
    durations = sorted(WebhookLog.objects.values_list("duration_ms", flat=True))
    # p95 of 4 attempts: the slowest one's histogram bucket (rollups.percentile interpolates in it)
    index = rollups.bucket(durations[-1], rollups.DURATION_BOUNDS_MS)
    lower = rollups.DURATION_BOUNDS_MS[index - 1] if index else 0
    assert lower <= stats["p95_duration_ms"] <= rollups.DURATION_BOUNDS_MS[index]
    assert stats["mean_duration_ms"] == pytest.approx(sum(durations) / 4, abs=0.01)
    assert stats["p50_duration_ms"] <= stats["p95_duration_ms"]
    # End to end: 2 deliveries succeeded, each once; latency = delivered_at - event created_at.
    delivered = Delivery.objects.filter(state="succeeded").select_related("event")
    latencies = [(d.delivered_at - d.event.created_at).total_seconds() * 1000 for d in delivered]
    assert stats["delivered"] == 2 and len(latencies) == 2
    assert stats["mean_latency_ms"] == pytest.approx(sum(latencies) / 2, abs=0.01)
    assert stats["p95_latency_ms"] is not None and stats["p50_latency_ms"] <= stats["p95_latency_ms"]
    assert stats["pending_deliveries"] == 2
    assert stats["last_success_at"] and stats["last_failure_at"]
    WebhookHourlyStats.objects.update(hour=F("hour") - timedelta(days=2))
    stats = api_client.get(f"{BASE}{webhook.pk}/stats/").json()
    assert stats["last_24h"]["attempts"] == 0 and stats["window_stats"]["p95_duration_ms"] is None
    assert stats["attempts"] == 4 and stats["p95_duration_ms"] is not None  # all time
    for window in ("7d", "30d"):
        stats = api_client.get(f"{BASE}{webhook.pk}/stats/", {"window": window}).json()
        assert stats["window"] == window and stats["window_stats"]["attempts"] == 4
    WebhookHourlyStats.objects.update(hour=F("hour") - timedelta(days=6))  # 8 days old
    assert api_client.get(f"{BASE}{webhook.pk}/stats/?window=7d").json()["window_stats"]["attempts"] == 0
    assert api_client.get(f"{BASE}{webhook.pk}/stats/?window=30d").json()["window_stats"]["attempts"] == 4
    response = api_client.get(f"{BASE}{webhook.pk}/stats/?window=1y")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "window" in field_errors(response)


def test_replay_sends_the_same_message_again(api_client, organization, webhook, receiver):
    trigger_event(organization=organization, event="application.created", payload={"x": 1})
    tasks.deliver_due()
    log = WebhookLog.objects.get()
    response = api_client.post(f"{BASE}{webhook.pk}/logs/{log.pk}/replay/")
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["attempt"] == 2 and response.json()["success"] is True
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body


def test_recover_resends_failed_deliveries_in_the_window(api_client, organization, webhook, receiver):
    receiver.default = Reply(status=500)
    Webhook.objects.filter(pk=webhook.pk).update(retry_attempts=0)
    for n in range(3):
        trigger_event(organization=organization, event="application.created", payload={"n": n})
    tasks.deliver_due()
    assert Delivery.objects.filter(state="failed").count() == 3
    old = Delivery.objects.order_by("created_at").first()
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    receiver.default = Reply(status=200)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = api_client.post(f"{BASE}{webhook.pk}/recover/", {"since": since}, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED and response.json() == {"recovered": 2}
    assert tasks.deliver_due() == 2
    assert Delivery.objects.filter(state="succeeded").count() == 2
    assert Delivery.objects.get(pk=old.pk).state == "failed"
    bad = api_client.post(
        f"{BASE}{webhook.pk}/recover/", {"since": "2030-01-01T00:00:00Z", "until": since}, format="json"
    )
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert api_client.post(f"{BASE}{webhook.pk}/recover/", {}, format="json").status_code == HTTPStatus.BAD_REQUEST


def test_rotate_secret_returns_new_secret(api_client, webhook):
    response = api_client.post(f"{BASE}{webhook.pk}/rotate-secret/")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["secret"] != webhook.secret and response.json()["previous_secret_expires_at"]


def test_event_catalogue(api_client):
    events = {row["event"] for row in api_client.get(f"{BASE}events/").json()}
    assert {"application.created", "offer.accepted", "job.closed", "webhook.test"} <= events


def test_the_event_catalogue_marks_system_only_events(api_client):
    rows = {row["event"]: row for row in api_client.get(f"{BASE}events/").json()}
    system_only = {name for name, row in rows.items() if row["system_only"]}
    # by namespace, plus the calendar events registered system-only (docs/HIRING.md)
    from_calendars = {"interview.rsvp_changed", "interview.updated_externally"}
    assert system_only == {name for name in rows if name.startswith(("integration.", "webhook."))} | from_calendars
    assert rows["interview.scheduled"]["system_only"] is False
    assert {"webhook.test", "webhook.disabled", "webhook.delivery.exhausted", "integration.unhealthy"} <= system_only
    assert rows["application.created"]["system_only"] is False
    assert "retries" in rows["webhook.delivery.exhausted"]["description"]


def test_operational_events_are_subscribable(api_client, receiver):
    body = {"name": "ops", "url": receiver.url, "events": ["webhook.disabled", "webhook.delivery.exhausted"]}
    response = api_client.post(BASE, body, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["events"] == body["events"]


@pytest.mark.parametrize("event", ["integration.unhealthy", "webhook.disabled", "webhook.delivery.exhausted"])
def test_posting_a_system_only_event_is_a_400_naming_the_rule(api_client, webhook, event):
    response = api_client.post("/api/events/", {"event": event, "payload": {}}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "application/json"
    [message] = field_errors(response)["event"]
    assert f'"{event}" is a system-only event' in message and "integration.* and webhook.*" in message
    assert not Event.objects.exists()


def test_trigger_event_endpoint(api_client, webhook):
    response = api_client.post(
        "/api/events/", {"event": "application.created", "payload": {"id": 1}, "idempotency_key": "abc"}, format="json"
    )
    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json()["event"] == "application.created" and response.json()["deliveries"] == 1
    again = api_client.post(
        "/api/events/", {"event": "application.created", "payload": {"id": 1}, "idempotency_key": "abc"}, format="json"
    )
    assert again.status_code == HTTPStatus.ACCEPTED and again.json()["id"] == response.json()["id"]
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"event": "nope.nothing", "payload": {}},
        {"event": "webhook.test", "payload": {}},
        {"event": "application.created", "payload": [1, 2]},
        {"event": "application.created", "payload": "text"},
        {"payload": {}},
        {"event": "application.created", "idempotency_key": "x" * 201},
    ],
)
def test_trigger_event_rejects_bad_input(api_client, body):
    response = api_client.post("/api/events/", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Event.objects.exists()


def test_read_only_key_cannot_write(read_only_client, organization, webhook):
    log_count = WebhookLog.objects.count()
    for method, path in [
        ("post", BASE),
        ("patch", f"{BASE}{webhook.pk}/"),
        ("delete", f"{BASE}{webhook.pk}/"),
        ("post", f"{BASE}{webhook.pk}/test/"),
        ("post", f"{BASE}{webhook.pk}/rotate-secret/"),
        ("post", f"{BASE}{webhook.pk}/recover/"),
        ("post", "/api/events/"),
    ]:
        response = getattr(read_only_client, method)(path, {}, format="json")
        assert response.status_code == HTTPStatus.FORBIDDEN, (method, path)
    assert read_only_client.get(f"{BASE}{webhook.pk}/stats/").status_code == HTTPStatus.OK
    assert WebhookLog.objects.count() == log_count and Webhook.objects.get().secret == webhook.secret


def test_other_organization_gets_404_everywhere_and_sees_nothing(organization, other_organization, webhook, receiver):
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    log = WebhookLog.objects.get()
    other = make_key_client(other_organization)
    for method, path in [
        ("get", f"{BASE}{webhook.pk}/"),
        ("put", f"{BASE}{webhook.pk}/"),
        ("patch", f"{BASE}{webhook.pk}/"),
        ("delete", f"{BASE}{webhook.pk}/"),
        ("post", f"{BASE}{webhook.pk}/test/"),
        ("get", f"{BASE}{webhook.pk}/logs/"),
        ("get", f"{BASE}{webhook.pk}/stats/"),
        ("post", f"{BASE}{webhook.pk}/logs/{log.pk}/replay/"),
        ("post", f"{BASE}{webhook.pk}/recover/"),
        ("post", f"{BASE}{webhook.pk}/rotate-secret/"),
    ]:
        response = getattr(other, method)(path, {}, format="json")
        assert response.status_code == HTTPStatus.NOT_FOUND, (method, path)
    assert other.get(BASE).json()["count"] == 0
    # A log id of another webhook under one's own webhook is a 404 too.
    own = webhook_create(organization=other_organization, name="own", url=receiver.url, events=["*"])
    assert other.post(f"{BASE}{own.pk}/logs/{log.pk}/replay/").status_code == HTTPStatus.NOT_FOUND
    assert len(receiver.requests) == 1
    webhook.refresh_from_db()
    assert webhook.is_active and Webhook.objects.filter(pk=webhook.pk).exists()


def test_webhook_can_belong_to_an_integration_of_the_same_organization(api_client, organization, other_organization):
    from integrations.services import integration_create

    def rippling(org):
        return integration_create(
            organization=org, name="HR", provider="rippling", auth_type="api_key", credentials={"api_key": "k"}
        )

    mine, theirs = rippling(organization), rippling(other_organization)
    body = {"name": "a", "url": "https://93.184.216.34/", "events": ["*"]}
    response = api_client.post(BASE, {**body, "integration": str(mine.pk)}, format="json")
    assert response.status_code == HTTPStatus.CREATED and response.json()["integration"] == str(mine.pk)
    for bad in [str(theirs.pk), "not-a-uuid"]:
        response = api_client.post(BASE, {**body, "integration": bad}, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST and "integration" in error_fields(response)
    assert Webhook.objects.count() == 1


def test_trigger_event_endpoint_query_count(api_client, webhook):
    """POST /api/events/ once the key's use is recorded: one read of the key (with its
    organization, no write), then the trigger: on PostgreSQL the webhooks' filters and one
    statement for the event and its deliveries; on SQLite its separate statements."""
    body = {"event": "application.created", "payload": {"id": 1}}
    api_client.post("/api/events/", body, format="json")
    with CaptureQueriesContext(connection) as captured:
        response = api_client.post("/api/events/", body, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED and response.json()["deliveries"] == 1
    assert response.json()["id"] == str(Event.objects.latest("created_at").pk)
    statements = [query["sql"] for query in captured.captured_queries]
    assert len(statements) <= (3 if connection.vendor == "postgresql" else 7), statements
    assert sum("organizations_apikey" in sql for sql in statements) == 1, statements  # one read, no write
