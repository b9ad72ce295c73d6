"""Operational events: `webhook.disabled` and `webhook.delivery.exhausted`.

Emitted in the transaction of the state change they announce, once, never to the webhook
they are about, and never about the exhaustion of a `webhook.*` event. Deliveries go to a
real local receiver (tests/webhooks/receiver.py); each webhook has its own path on it.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook as ReferenceVerifier

from tests.concurrency import Concurrently
from tests.webhooks.helpers import make_due
from tests.webhooks.receiver import Received, Reply
from webhooks import tasks
from webhooks.engine.loop import process
from webhooks.engine.policy import GONE_REASON, NOT_SENT_CRASHED, threshold_reason
from webhooks.engine.store import claim_due
from webhooks.events import WEBHOOK_DELIVERY_EXHAUSTED, WEBHOOK_DISABLED
from webhooks.models import Delivery, Event, Webhook
from webhooks.services import trigger_event, webhook_create, webhook_disable, webhook_enable, webhook_send_test
from webhooks.services.operational import payload_url

pytestmark = pytest.mark.django_db

OPERATIONAL = [WEBHOOK_DISABLED, WEBHOOK_DELIVERY_EXHAUSTED]


def answering(receiver, **statuses: int) -> None:
    """Answer requests to `/hook-<name>` with the status given for that name (else 200)."""

    def respond(request: Received) -> Reply:
        name = request.path.partition("?")[0].removeprefix("/hook-")
        return Reply(status=statuses.get(name, HTTPStatus.OK))

    receiver.responder = respond


def hook(organization, receiver, name: str, events: list[str], **fields) -> Webhook:
    return webhook_create(organization=organization, name=name, url=f"{receiver.url}-{name}", events=events, **fields)


def received_by(receiver, name: str) -> list[dict]:
    return [r.json() for r in receiver.requests if r.path == f"/hook-{name}"]


def only_event(event_type: str) -> Event:
    [event] = Event.objects.filter(type=event_type)
    return event


def test_a_410_disables_the_webhook_and_tells_the_others_not_it(organization, receiver):
    answering(receiver, gone=HTTPStatus.GONE)
    gone = hook(organization, receiver, "gone", ["*"])
    watcher = hook(organization, receiver, "watcher", [WEBHOOK_DISABLED])
    everything = hook(organization, receiver, "everything", ["*"])
    hook(organization, receiver, "jobs", ["job.opened"])
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()

    event = only_event(WEBHOOK_DISABLED)
    assert event.payload == {
        "webhook": {"id": str(gone.pk), "name": "gone", "url": gone.url},
        "reason": GONE_REASON,
        "disabled_by": "engine",
        "disabled_at": event.payload["disabled_at"],
        "consecutive_failures": 1,  # the delivery ended failed: a 410 is not retried
        "last_status": 410,
        "last_error": "HTTP 410",
    }
    gone.refresh_from_db()
    assert gone.disabled_at.isoformat().replace("+00:00", "Z").startswith(event.payload["disabled_at"][:19])
    assert set(Delivery.objects.filter(event=event).values_list("webhook_id", flat=True)) == {
        watcher.pk,
        everything.pk,
    }
    assert not Event.objects.filter(type=WEBHOOK_DELIVERY_EXHAUSTED).exists()  # it had retries left

    tasks.deliver_due()
    assert [body["type"] for body in received_by(receiver, "watcher")] == [WEBHOOK_DISABLED]
    assert [body["type"] for body in received_by(receiver, "gone")] == ["job.opened"]


def test_too_many_failed_deliveries_disable_with_the_count_and_the_last_error(organization, receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 2
    answering(receiver, failing=HTTPStatus.SERVICE_UNAVAILABLE)
    failing = hook(organization, receiver, "failing", ["job.opened"], retry_attempts=0)
    hook(organization, receiver, "watcher", OPERATIONAL)
    for _ in range(2):
        trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()

    payload = only_event(WEBHOOK_DISABLED).payload
    assert payload["reason"] == threshold_reason(2) and payload["disabled_by"] == "engine"
    assert payload["consecutive_failures"] == 2
    assert (payload["last_status"], payload["last_error"]) == (503, "HTTP 503")
    assert payload["webhook"]["id"] == str(failing.pk)
    assert Event.objects.filter(type=WEBHOOK_DELIVERY_EXHAUSTED).count() == 2


def test_an_exhausted_delivery_is_announced_to_the_others_not_to_its_webhook(organization, receiver):
    answering(receiver, failing=HTTPStatus.INTERNAL_SERVER_ERROR)
    failing = hook(organization, receiver, "failing", ["*"], retry_attempts=1)
    watcher = hook(organization, receiver, "watcher", [WEBHOOK_DELIVERY_EXHAUSTED])
    original = trigger_event(organization=organization, event="job.opened", payload={"job_id": 3})
    tasks.deliver_due()
    assert not Event.objects.filter(type=WEBHOOK_DELIVERY_EXHAUSTED).exists()  # one retry left
    make_due()
    tasks.deliver_due()

    delivery = Delivery.objects.get(event=original, webhook=failing)
    event = only_event(WEBHOOK_DELIVERY_EXHAUSTED)
    assert event.payload == {
        "webhook": {"id": str(failing.pk), "name": "failing", "url": failing.url},
        "delivery_id": str(delivery.pk),
        "message_id": delivery.message_id,
        "event": {"id": str(original.pk), "type": "job.opened"},
        "attempts": 2,
        "last_status": 500,
        "last_error": "HTTP 500",
    }
    # Still active and subscribed to "*", the failing webhook is left out of the fan-out.
    failing.refresh_from_db()
    assert failing.is_active
    assert list(Delivery.objects.filter(event=event).values_list("webhook_id", flat=True)) == [watcher.pk]
    tasks.deliver_due()
    assert [body["data"] for body in received_by(receiver, "watcher")] == [event.payload]
    assert {body["type"] for body in received_by(receiver, "failing")} == {"job.opened"}


def test_two_failing_webhooks_on_everything_do_not_announce_each_other_forever(organization, receiver):
    answering(receiver, a=HTTPStatus.INTERNAL_SERVER_ERROR, b=HTTPStatus.INTERNAL_SERVER_ERROR)
    a = hook(organization, receiver, "a", ["*"], retry_attempts=0)
    b = hook(organization, receiver, "b", ["*"], retry_attempts=0)
    trigger_event(organization=organization, event="job.opened", payload={})
    for _ in range(6):
        tasks.deliver_due()

    assert not Delivery.objects.filter(state=Delivery.State.PENDING).exists()
    exhausted = list(Event.objects.filter(type=WEBHOOK_DELIVERY_EXHAUSTED))
    # One each about the original event; their own failed deliveries announce nothing.
    assert sorted((e.payload["webhook"]["name"], e.payload["event"]["type"]) for e in exhausted) == [
        ("a", "job.opened"),
        ("b", "job.opened"),
    ]
    assert Event.objects.count() == 3
    assert [body["type"] for body in received_by(receiver, "a")] == ["job.opened", WEBHOOK_DELIVERY_EXHAUSTED]
    assert [body["data"]["webhook"]["id"] for body in received_by(receiver, "a")[1:]] == [str(b.pk)]
    assert [body["data"]["webhook"]["id"] for body in received_by(receiver, "b")[1:]] == [str(a.pk)]


def test_a_failed_test_event_is_not_announced(organization, receiver):
    answering(receiver, failing=HTTPStatus.INTERNAL_SERVER_ERROR)
    failing = hook(organization, receiver, "failing", ["job.opened"])
    hook(organization, receiver, "watcher", OPERATIONAL)
    assert webhook_send_test(webhook=failing).success is False
    assert not Event.objects.filter(type__in=OPERATIONAL).exists()


def test_a_delivery_that_kept_crashing_its_worker_is_announced(organization, receiver):
    hook(organization, receiver, "crashing", ["job.opened"], retry_attempts=0)
    hook(organization, receiver, "watcher", OPERATIONAL)
    trigger_event(organization=organization, event="job.opened", payload={})
    Delivery.objects.update(attempts=2)  # two claims already, each lost with its worker
    tasks.deliver_due()
    payload = only_event(WEBHOOK_DELIVERY_EXHAUSTED).payload
    assert (payload["attempts"], payload["last_status"], payload["last_error"]) == (3, None, NOT_SENT_CRASHED)


def test_disabling_through_the_api_is_announced_once(api_client, organization, receiver):
    subject = hook(organization, receiver, "subject", ["*"])
    watcher = hook(organization, receiver, "watcher", [WEBHOOK_DISABLED])
    url = f"/api/integrations/webhooks/{subject.pk}/"
    assert api_client.patch(url, {"is_active": False}, format="json").status_code == HTTPStatus.OK
    assert api_client.patch(url, {"is_active": False, "name": "again"}, format="json").status_code == HTTPStatus.OK

    event = only_event(WEBHOOK_DISABLED)
    assert event.payload["disabled_by"] == "api"
    assert event.payload["reason"] == "Disabled through the API."
    assert (event.payload["consecutive_failures"], event.payload["last_status"], event.payload["last_error"]) == (
        0,
        None,
        "",
    )
    assert list(Delivery.objects.filter(event=event).values_list("webhook_id", flat=True)) == [watcher.pk]

    # Enabled and disabled again: a new disable, a new event.
    assert api_client.patch(url, {"is_active": True}, format="json").status_code == HTTPStatus.OK
    assert api_client.patch(url, {"is_active": False}, format="json").status_code == HTTPStatus.OK
    assert Event.objects.filter(type=WEBHOOK_DISABLED).count() == 2


def test_disabling_in_the_admin_is_announced(admin_client, organization, receiver):
    by_action = hook(organization, receiver, "by-action", ["*"])
    by_form = hook(organization, receiver, "by-form", ["*"])
    hook(organization, receiver, "watcher", [WEBHOOK_DISABLED])
    changelist = "/admin/webhooks/webhook/"
    response = admin_client.post(changelist, {"action": "disable", "_selected_action": [str(by_action.pk)]})
    assert response.status_code == HTTPStatus.FOUND
    change_url = f"{changelist}{by_form.pk}/change/"
    form = admin_client.get(change_url).context["adminform"].form
    data = {"organization": str(organization.pk), "name": "by-form", "url": by_form.url, "events": '["*"]'}
    data |= {"retry_attempts": "5", "initial-is_active": str(form["is_active"].initial)}  # is_active unticked
    assert admin_client.post(change_url, data).status_code == HTTPStatus.FOUND, "form refused"

    payloads = {e.payload["webhook"]["name"]: e.payload for e in Event.objects.filter(type=WEBHOOK_DISABLED)}
    assert set(payloads) == {"by-action", "by-form"}
    assert {p["disabled_by"] for p in payloads.values()} == {"admin"}
    assert payloads["by-action"]["reason"].endswith("in the admin.")


def test_a_disable_that_rolls_back_announces_nothing(organization, receiver, django_capture_on_commit_callbacks):
    subject = hook(organization, receiver, "subject", ["*"])
    hook(organization, receiver, "watcher", [WEBHOOK_DISABLED])
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        with transaction.atomic():
            webhook_disable(webhook=subject, reason="maintenance")
            assert Event.objects.filter(type=WEBHOOK_DISABLED).exists()  # inside, with the disable
            raise RuntimeError("the caller fails")
    assert callbacks == []
    assert not Event.objects.exists() and not Delivery.objects.exists()
    subject.refresh_from_db()
    assert subject.is_active

    with django_capture_on_commit_callbacks() as callbacks:
        webhook_disable(webhook=subject, reason="maintenance")
    assert len(callbacks) == 1  # the watcher's delivery is requested on commit, like any event's
    assert only_event(WEBHOOK_DISABLED).payload["reason"] == "maintenance"


def test_the_engine_requests_the_announcement_on_commit(organization, receiver, django_capture_on_commit_callbacks):
    answering(receiver, failing=HTTPStatus.GONE)
    hook(organization, receiver, "failing", ["job.opened"], retry_attempts=0)
    hook(organization, receiver, "watcher", OPERATIONAL)
    trigger_event(organization=organization, event="job.opened", payload={})
    with django_capture_on_commit_callbacks() as callbacks:
        tasks.deliver_due()
    assert Event.objects.filter(type__in=OPERATIONAL).count() == 2
    # One drain request for both events' deliveries (coalesced in the transaction), run
    # once the batch's write commits; the drain, still claiming, delivered them meanwhile.
    assert len(callbacks) == 1 and callbacks[0].delivery_count == 2
    announced = Delivery.objects.filter(event__type__in=OPERATIONAL)
    assert announced.count() == 2
    assert set(announced.values_list("state", flat=True)) == {Delivery.State.SUCCEEDED}


def test_operational_events_arrive_signed_and_verify_with_the_reference_library(organization, receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 1
    answering(receiver, failing=HTTPStatus.INTERNAL_SERVER_ERROR)
    hook(organization, receiver, "failing", ["application.created"], retry_attempts=0)
    watcher = hook(organization, receiver, "watcher", OPERATIONAL)
    trigger_event(organization=organization, event="application.created", payload={"application_id": 1})
    tasks.deliver_due()  # the failure, and in the same write, both announcements
    tasks.deliver_due()  # their delivery

    requests = [r for r in receiver.requests if r.path == "/hook-watcher"]
    assert len(requests) == 2
    verifier = ReferenceVerifier(watcher.secret)
    verified = {body["type"]: body for body in (verifier.verify(r.body, r.headers) for r in requests)}
    assert set(verified) == set(OPERATIONAL)
    for event_type, body in verified.items():
        assert body["data"] == json.loads(json.dumps(only_event(event_type).payload))
    assert {r.headers["webhook-id"] for r in requests} == {
        d.message_id for d in Delivery.objects.filter(webhook=watcher)
    }
    with pytest.raises(Exception, match="No matching signature"):
        ReferenceVerifier(watcher.secret).verify(requests[0].body + b" ", requests[0].headers)


def test_payloads_carry_no_secret_and_no_header(organization, receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 1
    answering(receiver, failing=HTTPStatus.INTERNAL_SERVER_ERROR)
    failing = webhook_create(
        organization=organization,
        name="failing",
        url=f"{receiver.url}-failing?tenant=acme&access_token=url-sentinel-token",
        events=["job.opened"],
        retry_attempts=0,
        headers={"Authorization": "Bearer header-sentinel-token", "X-Tenant": "header-sentinel-tenant"},
    )
    hook(organization, receiver, "watcher", OPERATIONAL)
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    tasks.deliver_due()

    texts = [json.dumps(e.payload) for e in Event.objects.filter(type__in=OPERATIONAL)]
    texts += [r.body.decode() for r in receiver.requests if r.path == "/hook-watcher"]
    assert len(texts) == 4
    for text in texts:
        for secret in (failing.secret, "url-sentinel-token", "header-sentinel", "Authorization", "X-Tenant"):
            assert secret not in text
        assert "-failing?tenant=acme&access_token=[redacted]" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/in", "https://hooks.example.com/in"),
        ("https://hooks.example.com/in?a=1&b=x%20y", "https://hooks.example.com/in?a=1&b=x%20y"),  # untouched
        ("https://h.example.com/?sig=abc&apiKey=def&id=7", "https://h.example.com/?sig=abc&apiKey=[redacted]&id=7"),
        ("https://h.example.com/?token=", "https://h.example.com/?token=[redacted]"),
    ],
)
def test_payload_urls_mask_query_values_with_sensitive_names(url, shown):
    assert payload_url(url) == shown


# --- two writers at once: the conditional UPDATE decides who announces -------------------

ROUNDS = 5


@pytest.mark.django_db(transaction=True)
def test_two_workers_finishing_the_same_exhausted_delivery_announce_it_once(organization, receiver):
    answering(receiver, failing=HTTPStatus.INTERNAL_SERVER_ERROR)
    hook(organization, receiver, "failing", ["job.opened"], retry_attempts=0)
    hook(organization, receiver, "watcher", OPERATIONAL)
    for round_ in range(ROUNDS):
        original = trigger_event(organization=organization, event="job.opened", payload={"round": round_})
        [stale] = claim_due(limit=1)
        # Its worker looks dead: the lease expires and another worker claims the delivery.
        Delivery.objects.filter(pk=stale.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        [fresh] = claim_due(limit=1)
        assert fresh.pk == stale.pk and fresh.lease_token != stale.lease_token
        with Concurrently(lambda: process([stale]), lambda: process([fresh])):
            pass
        announced = Event.objects.filter(type=WEBHOOK_DELIVERY_EXHAUSTED, payload__event__id=str(original.pk))
        assert announced.count() == 1, f"round {round_}"
        assert announced.get().payload["attempts"] == 2
        Delivery.objects.filter(event__type__in=OPERATIONAL).delete()  # the watcher's, not sent here


@pytest.mark.django_db(transaction=True)
def test_two_batches_crossing_the_threshold_at_once_announce_one_disable(organization, receiver, settings):
    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 1
    answering(receiver, failing=HTTPStatus.INTERNAL_SERVER_ERROR)
    failing = hook(organization, receiver, "failing", ["job.opened"], retry_attempts=0)
    hook(organization, receiver, "watcher", OPERATIONAL)
    for round_ in range(ROUNDS):
        webhook_enable(webhook=failing)
        for _ in range(2):
            trigger_event(organization=organization, event="job.opened", payload={})
        first, second = claim_due(limit=1), claim_due(limit=1)
        assert first and second and first[0].lease_token != second[0].lease_token
        with Concurrently(lambda: process(first), lambda: process(second)):
            pass
        assert Event.objects.filter(type=WEBHOOK_DISABLED).count() == round_ + 1, f"round {round_}"
        Delivery.objects.all().delete()
    failing.refresh_from_db()
    assert not failing.is_active and failing.consecutive_failures == 2


@pytest.mark.django_db(transaction=True)
def test_an_api_disable_racing_an_engine_disable_is_announced_once(api_client, organization, receiver):
    answering(receiver, gone=HTTPStatus.GONE)
    gone = hook(organization, receiver, "gone", ["job.opened"], retry_attempts=0)
    hook(organization, receiver, "watcher", OPERATIONAL)
    url = f"/api/integrations/webhooks/{gone.pk}/"
    winners = set()
    for round_ in range(ROUNDS * 2):
        webhook_enable(webhook=gone)
        trigger_event(organization=organization, event="job.opened", payload={})
        batch = claim_due(limit=1)

        def engine(batch=batch, round_=round_):
            time.sleep(0.002 * (round_ % 4))  # land the two writes in either order
            process(batch)

        def api():
            response = api_client.patch(url, {"is_active": False}, format="json")
            assert response.status_code == HTTPStatus.OK

        with Concurrently(engine, api):
            pass
        [event] = Event.objects.filter(type=WEBHOOK_DISABLED)
        gone.refresh_from_db()
        expected_reason = GONE_REASON if event.payload["disabled_by"] == "engine" else "Disabled through the API."
        assert event.payload["reason"] == gone.disabled_reason == expected_reason, f"round {round_}"
        winners.add(event.payload["disabled_by"])
        Event.objects.all().delete()
    assert winners <= {"engine", "api"}
