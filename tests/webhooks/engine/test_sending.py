"""Sending: what a receiver gets (headers, signature, body) and how its answer is read."""

import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook as ReferenceVerifier

from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.engine.sending import send_one
from webhooks.engine.store import claim_due
from webhooks.models import Delivery, Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create, webhook_rotate_secret

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


def test_delivery_is_signed_per_standard_webhooks(organization, webhook, receiver):
    event = trigger_event(organization=organization, event="application.created", payload={"application_id": 7})
    assert event.delivery_count == 1
    assert tasks.deliver_due() == 1

    [request] = receiver.wait_for(1)
    # The reference implementation verifies our signature and returns the body.
    verified = ReferenceVerifier(webhook.secret).verify(request.body, request.headers)
    assert verified["type"] == "application.created"
    assert verified["data"] == {"application_id": 7}
    assert verified["timestamp"].startswith(str(event.created_at.year))
    delivery = Delivery.objects.get()
    assert request.headers["webhook-id"] == delivery.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert request.headers["content-type"] == "application/json"
    assert delivery.state == Delivery.State.SUCCEEDED

    log = WebhookLog.objects.get()
    assert log.success and log.response_status == 200 and log.attempt == 1
    assert log.response_body == "ok"
    assert log.duration_ms > 0
    webhook.refresh_from_db()
    assert webhook.success_count == 1 and webhook.last_success_at is not None


def test_custom_headers_are_sent_and_sensitive_ones_not_logged(organization, receiver):
    webhook_create(
        organization=organization,
        name="h",
        url=receiver.url,
        events=["*"],
        headers={"X-Tenant": "acme", "Authorization": "Bearer receiver-sentinel-token"},
    )
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    [request] = receiver.wait_for(1)
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["authorization"] == "Bearer receiver-sentinel-token"
    log = WebhookLog.objects.get()
    assert log.request_headers["X-Tenant"] == "acme"
    assert log.request_headers["Authorization"] == "[redacted]"
    assert "receiver-sentinel-token" not in json.dumps(log.request_headers)


def test_timeout_and_connection_errors_are_logged_failures(organization, receiver, settings):
    settings.WEBHOOKS_TIMEOUT = 0.3
    receiver.default = Reply(delay=1.0)
    webhook_create(organization=organization, name="slow", url=receiver.url, events=["*"])
    webhook_create(organization=organization, name="closed", url="http://127.0.0.1:9/hook", events=["*"])
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    errors = dict(WebhookLog.objects.values_list("webhook__name", "error"))
    assert errors["slow"] == "Timed out after 0.3 s."
    assert errors["closed"] == "Connection refused."


def test_redirects_are_not_followed(organization, webhook, receiver):
    receiver.default = Reply(status=302, headers={"Location": "http://127.0.0.1:9/elsewhere"})
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    log = WebhookLog.objects.get()
    assert log.success is False and log.response_status == 302 and "redirects are not followed" in log.error
    assert len(receiver.requests) == 1


def test_response_excerpt_is_at_most_4_kb(organization, webhook, receiver):
    receiver.default = Reply(body=b"x" * 100_000)
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    assert len(WebhookLog.objects.get().response_body) == 4096


def test_rotated_secret_signs_beside_the_new_one_for_24_hours(organization, webhook, receiver):
    old_secret = webhook.secret
    rotated = webhook_rotate_secret(webhook=webhook)
    assert rotated.secret != old_secret
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split()) == 2
    ReferenceVerifier(old_secret).verify(request.body, request.headers)
    ReferenceVerifier(rotated.secret).verify(request.body, request.headers)
    Webhook.objects.filter(pk=webhook.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    trigger_event(organization=organization, event="application.created", payload={})
    tasks.deliver_due()
    assert len(receiver.wait_for(2)[1].headers["webhook-signature"].split()) == 1


def test_batch_is_sent_concurrently(organization, receiver, settings):
    receiver.default = Reply(delay=0.5)
    for index in range(10):
        webhook_create(organization=organization, name=f"w{index}", url=receiver.url, events=["*"])
    trigger_event(organization=organization, event="job.created", payload={})
    started = time.monotonic()
    assert tasks.deliver_due() == 10
    assert time.monotonic() - started < 2.5  # 10 x 0.5 s one after another would take 5 s
    assert WebhookLog.objects.filter(success=True).count() == 10


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


def test_header_values_with_inner_spaces_and_tabs_are_sent(organization, receiver):
    webhook_create(organization=organization, name="h", url=receiver.url, events=["*"], headers={"X-T": "a b\tc"})
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    assert receiver.wait_for(1)[0].headers["x-t"] == "a b\tc"


def test_emoji_and_non_ascii_payloads_are_fine(organization, webhook, receiver):
    event = trigger_event(organization=organization, event="application.created", payload={"name": "Zoë 😀"})
    assert event.delivery_count == 1
    tasks.deliver_due()
    assert receiver.wait_for(1)[0].json()["data"] == {"name": "Zoë 😀"}


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


def test_each_delivery_gets_its_own_headers_and_body_and_a_changed_webhook_its_new_settings(organization, receiver):
    """Requests are prepared once per webhook and copied per delivery (sending `_prepared`):
    each delivery still carries its own id, signature, body and Content-Length, and a
    webhook whose headers or URL change sends with the new ones at once."""
    from webhooks.services import webhook_update

    webhook = webhook_create(
        organization=organization, name="h", url=receiver.url, events=["*"], headers={"X-Tenant": "acme"}
    )
    for size in (1, 300):
        trigger_event(organization=organization, event="job.opened", payload={"pad": "x" * size})
    tasks.deliver_due()
    first = receiver.wait_for(2)
    verifier = ReferenceVerifier(webhook.secret)
    assert len({r.headers["webhook-id"] for r in first}) == 2
    for request in first:
        assert int(request.headers["content-length"]) == len(request.body)
        verifier.verify(request.body, request.headers)  # raises on a signature of another body
        assert request.headers["x-tenant"] == "acme"
    webhook_update(webhook=webhook, headers={"X-Tenant": "globex"}, url=receiver.url + "-moved")
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    last = receiver.wait_for(3)[-1]
    assert last.headers["x-tenant"] == "globex" and last.path.endswith("-moved")


def _cached_text() -> str:
    """Everything the process's request templates hold (keys, headers), as text."""
    from webhooks.engine import sending

    parts = [repr(list(sending._templates))]
    for value in sending._templates.values():
        for item in value if isinstance(value, tuple) else (value,):
            if hasattr(item, "headers"):
                parts.append(repr(dict(item.headers)))
    return " ".join(parts)


def test_a_refreshed_bearer_token_is_sent_next_and_the_old_one_not_kept(organization, webhook, receiver):
    """A subscriber token refreshed (or rotated) between two deliveries of one webhook: the
    next request carries the new token, and no request template still holds the old one."""
    from webhooks.engine.subscriber_auth import SubscriberContext

    for _ in range(2):
        trigger_event(organization=organization, event="application.created", payload={})
    first, second = claim_due(limit=2)
    send_one(first, b"{}", [b"k" * 32], SubscriberContext(bearer="old-token-sentinel"))
    assert "old-token-sentinel" in _cached_text()  # the template of the first send
    send_one(second, b"{}", [b"k" * 32], SubscriberContext(bearer="new-token-sentinel"))
    assert [r.headers["authorization"] for r in receiver.wait_for(2)] == [
        "Bearer old-token-sentinel",
        "Bearer new-token-sentinel",
    ]
    assert "old-token-sentinel" not in _cached_text()
    assert "new-token-sentinel" in _cached_text()


def test_edited_secret_headers_and_a_rotated_signing_secret_apply_at_once_and_leave_nothing_cached(
    organization, receiver
):
    """A custom secret header edited and the signing secret rotated between deliveries: the
    next delivery sends the new header and is signed with the new secret; no template holds
    the old header value, and none ever holds a signature or a signing key."""
    from webhooks.services import webhook_update

    webhook = webhook_create(
        organization=organization, name="h", url=receiver.url, events=["*"], headers={"X-Api-Key": "old-key-sentinel"}
    )
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    assert receiver.wait_for(1)[0].headers["x-api-key"] == "old-key-sentinel"
    webhook_update(webhook=webhook, headers={"X-Api-Key": "new-key-sentinel"})
    rotated = webhook_rotate_secret(webhook=webhook)
    Webhook.objects.filter(pk=webhook.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    trigger_event(organization=organization, event="job.opened", payload={})
    tasks.deliver_due()
    last = receiver.wait_for(2)[1]
    assert last.headers["x-api-key"] == "new-key-sentinel"
    ReferenceVerifier(rotated.secret).verify(last.body, last.headers)  # the new secret alone
    assert len(last.headers["webhook-signature"].split()) == 1
    cached = _cached_text()
    assert "old-key-sentinel" not in cached and "new-key-sentinel" in cached
    assert "webhook-signature" not in cached.lower()
    assert rotated.secret not in cached and webhook.secret not in cached


def test_a_template_unused_for_a_while_is_dropped(organization, receiver, monkeypatch):
    """An idle webhook's template (and the credentials it holds) does not stay for the life
    of the process: the next template prepared drops those idle past TEMPLATE_IDLE_SECONDS."""
    from webhooks.engine import sending
    from webhooks.engine.subscriber_auth import SubscriberContext

    idle = webhook_create(organization=organization, name="idle", url=receiver.url, events=["job.opened"])
    busy = webhook_create(organization=organization, name="busy", url=receiver.url + "b", events=["job.closed"])
    trigger_event(organization=organization, event="job.opened", payload={})
    [delivery] = claim_due(limit=1)
    send_one(delivery, b"{}", [b"k" * 32], SubscriberContext(bearer="idle-token-sentinel"))
    assert "idle-token-sentinel" in _cached_text()
    monkeypatch.setattr(sending, "TEMPLATE_IDLE_SECONDS", 0.0)
    time.sleep(0.01)
    trigger_event(organization=organization, event="job.closed", payload={})
    [other] = claim_due(limit=1)
    assert other.webhook_id == busy.pk != idle.pk
    send_one(other, b"{}", [b"k" * 32])
    assert "idle-token-sentinel" not in _cached_text()
