"""Regressions for the findings of the delivery engine's review (each failed before its fix)."""

import socket
import threading
import time
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from common.ssrf import is_public_address
from tests.webhooks.receiver import Reply
from webhooks import services, tasks
from webhooks.engine.loop import process
from webhooks.engine.sending import send_one
from webhooks.engine.store import claim_due
from webhooks.models import Delivery, Webhook, WebhookLog
from webhooks.retry import MAX_RETRY_AFTER, parse_retry_after
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db


class Trickle:
    """A server that answers one byte every `gap` seconds (each read is within a timeout)."""

    def __init__(self, gap: float):
        self.gap = gap
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 40:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(self.gap)


def test_a_trickling_receiver_is_cut_off_at_the_deadline(organization, settings):
    settings.WEBHOOKS_TIMEOUT = 1.0
    server = Trickle(gap=0.3)
    webhook_create(organization=organization, name="slow", url=server.url, events=["*"])
    trigger_event(organization=organization, event="job.opened", payload={})
    [delivery] = claim_due(limit=1)
    started = time.monotonic()
    outcome = send_one(delivery, b"{}", [b"k" * 32])
    assert time.monotonic() - started < 2.5
    assert outcome.success is False and outcome.error == "Timed out after 1 s."


def test_nul_in_a_receiver_answer_does_not_fail_the_batch(organization, receiver):
    good = webhook_create(organization=organization, name="good", url=receiver.url, events=["*"])
    odd = webhook_create(organization=organization, name="odd", url=receiver.url + "odd", events=["*"])
    receiver.responder = lambda r: Reply(200, b"ok\x00!" if r.path.endswith("odd") else b"ok")
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    states = dict(Delivery.objects.values_list("webhook_id", "state"))
    assert states == {good.pk: "succeeded", odd.pk: "succeeded"}
    assert WebhookLog.objects.get(webhook=odd).response_body == "ok\ufffd!"


@pytest.mark.parametrize(
    "payload", [{"a": "x\u0000y"}, {"k\u0000": 1}, {"a": ["\u0000"]}, {"a": float("nan")}, {"a": "\ud800"}]
)
def test_payloads_postgres_cannot_store_are_refused(organization, webhook, api_client, payload):
    with pytest.raises(ValidationError):
        trigger_event(organization=organization, event="job.opened", payload=payload)
    assert not Delivery.objects.exists()


def test_nul_in_payload_via_the_api_is_a_400(api_client, webhook):
    response = api_client.post("/api/events/", {"event": "job.opened", "payload": {"a": "x\u0000y"}}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_emoji_and_non_ascii_payloads_are_fine(organization, webhook, receiver):
    event = trigger_event(organization=organization, event="application.created", payload={"name": "Zoë 😀"})
    assert event.delivery_count == 1
    tasks.deliver_due()
    assert receiver.wait_for(1)[0].json()["data"] == {"name": "Zoë 😀"}


@pytest.mark.django_db(transaction=True)
def test_webhook_deleted_mid_batch_keeps_the_other_results(organization, receiver):
    kept = webhook_create(organization=organization, name="a", url=receiver.url, events=["*"])
    gone = webhook_create(organization=organization, name="b", url=receiver.url + "b", events=["*"])
    trigger_event(organization=organization, event="job.opened", payload={})
    batch = claim_due(limit=50)
    assert len(batch) == 2
    Webhook.objects.filter(pk=gone.pk).delete()
    process(batch)
    assert Delivery.objects.get(webhook=kept).state == Delivery.State.SUCCEEDED
    assert WebhookLog.objects.filter(webhook=kept).count() == 1


def test_a_worker_that_lost_its_lease_moves_no_counters(organization, receiver):
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    trigger_event(organization=organization, event="job.opened", payload={})
    [stale] = claim_due(limit=1)
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    [fresh] = claim_due(limit=1)
    process([fresh])
    receiver.default = Reply(status=410)
    process([stale])  # finishes late, with an answer that would disable the webhook
    webhook.refresh_from_db()
    assert webhook.success_count == 1 and webhook.failure_count == 0 and webhook.is_active
    assert WebhookLog.objects.count() == 1


def test_admin_change_form_enables_and_disables_through_the_services(organization, receiver, admin_client):
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    form = {"name": "w", "url": receiver.url, "events": '["*"]', "retry_attempts": 5}
    admin_client.post(f"/admin/webhooks/webhook/{webhook.pk}/change/", form)  # is_active unticked
    webhook.refresh_from_db()
    assert webhook.is_active is False and webhook.disabled_at is not None and webhook.disabled_reason
    Webhook.objects.filter(pk=webhook.pk).update(consecutive_failures=15)
    admin_client.post(f"/admin/webhooks/webhook/{webhook.pk}/change/", {**form, "is_active": "on"})
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.consecutive_failures == 0 and webhook.disabled_reason == ""


@pytest.mark.parametrize("value", [" acme", "\tacme", "a\x00b", "a\x01b", "a\rb"])
def test_header_values_requests_cannot_send_are_refused(api_client, receiver, value):
    response = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "h", "url": receiver.url, "events": ["*"], "headers": {"X-Tenant": value}},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST  # NUL: already the JSON parser
    with pytest.raises(ValidationError):
        webhook_create(
            organization=api_client.organization, name="h", url=receiver.url, events=["*"], headers={"X": value}
        )
    assert not Webhook.objects.exists()


def test_header_values_with_inner_spaces_and_tabs_are_sent(organization, receiver):
    webhook_create(organization=organization, name="h", url=receiver.url, events=["*"], headers={"X-T": "a b\tc"})
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    assert receiver.wait_for(1)[0].headers["x-t"] == "a b\tc"


def test_test_endpoint_is_not_taken_by_a_background_worker(api_client, webhook, receiver, monkeypatch):
    real_send_now = services._send_now

    def worker_claims_everything_first(delivery):
        assert claim_due(limit=50) == []  # a background deliver_due finds nothing to take
        return real_send_now(delivery)

    monkeypatch.setattr(services, "_send_now", worker_claims_everything_first)
    response = api_client.post(f"/api/integrations/webhooks/{webhook.pk}/test/")
    assert response.status_code == HTTPStatus.OK and response.json()["success"] is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 -0000", None),  # in the past
        ("99999999999999999999", MAX_RETRY_AFTER),
        ("²", None),
        ("soon", None),
        ("30", timedelta(seconds=30)),
    ],
)
def test_retry_after_parsing_never_raises(value, expected):
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize("address", ["2002:a9fe:a9fe::1", "192.88.99.1", "fec0::1", "::7f00:1", "100.64.0.1"])
def test_one_address_rule_at_save_and_connect_time(address):
    import ipaddress

    assert is_public_address(ipaddress.ip_address(address)) is False


def test_python_callers_may_pass_uuids_dates_and_decimals(organization, webhook, receiver):
    import datetime
    import decimal
    import uuid

    ident = uuid.uuid4()
    when = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
    trigger_event(
        organization=organization,
        event="application.created",
        payload={"id": ident, "at": when, "salary": decimal.Decimal("10.50")},
    )
    tasks.deliver_due()
    data = receiver.wait_for(1)[0].json()["data"]
    assert data == {"id": str(ident), "at": "2026-11-25T12:00:00Z", "salary": "10.50"}


def test_an_undecryptable_secret_fails_only_its_own_deliveries(organization, receiver, settings):
    from integrations.fields import clear_fernet_caches

    good = webhook_create(organization=organization, name="good", url=receiver.url, events=["*"])
    original = settings.FERNET_KEYS
    settings.FERNET_KEYS = ["a-key-that-will-be-dropped-too-early"]
    clear_fernet_caches()
    try:
        bad = webhook_create(organization=organization, name="bad", url=receiver.url, events=["*"])
    finally:
        settings.FERNET_KEYS = original
        clear_fernet_caches()
    trigger_event(organization=organization, event="job.opened", payload={})
    assert tasks.deliver_due() == 2  # the claim itself does not fail
    assert len(receiver.wait_for(1)) == 1
    assert Delivery.objects.get(webhook=good).state == Delivery.State.SUCCEEDED
    failed = WebhookLog.objects.get(webhook=bad)
    assert failed.success is False and "cannot be decrypted" in failed.error
    assert Delivery.objects.get(webhook=bad).state == Delivery.State.PENDING  # retried once keys are fixed
