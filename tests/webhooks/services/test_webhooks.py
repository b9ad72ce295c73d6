"""Webhook writes from the API and the admin against the delivery engine, run at the same time.

The engine owns a webhook's counters, `consecutive_failures`, `last_*` times and the
`is_active`/`disabled_*` it sets itself; an edit of the name must never write them back
from the copy it read earlier. Threads need committed data: `transactional_db`.
"""

from __future__ import annotations

import threading
import time
from http import HTTPStatus

import pytest
from django.db import connection

from tests.concurrency import Concurrently
from tests.webhooks.receiver import Reply
from webhooks import tasks
from webhooks.models import Delivery, Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create, webhook_enable

pytestmark = pytest.mark.django_db(transaction=True)  # the transactional_db fixture

DELIVERIES = 1000 if connection.vendor == "postgresql" else 400
PATCHES = 300


def drain_until_done(done: threading.Event | None = None) -> None:
    """The engine: drain until nothing is pending (and, if given, until `done` is set)."""
    while Delivery.objects.filter(state=Delivery.State.PENDING).exists() or (done and not done.is_set()):
        tasks.deliver_due()
        time.sleep(0.001)


def trigger(organization, count: int) -> None:
    for _ in range(count):
        trigger_event(organization=organization, event="application.created", payload={})


def test_counters_equal_what_the_receiver_saw_under_concurrent_renames(
    organization, webhook, receiver, api_client, settings
):
    settings.WEBHOOKS_BATCH_SIZE = 10  # many counter updates for the renames to race with
    trigger(organization, DELIVERIES)
    statuses: list[int] = []
    url = f"/api/integrations/webhooks/{webhook.pk}/"

    def rename():
        for n in range(PATCHES):
            statuses.append(api_client.patch(url, {"name": f"renamed {n}"}, format="json").status_code)

    with Concurrently(drain_until_done, drain_until_done, rename):
        pass

    assert statuses == [HTTPStatus.OK] * PATCHES
    webhook.refresh_from_db()
    assert webhook.name == f"renamed {PATCHES - 1}"
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == DELIVERIES
    assert WebhookLog.objects.filter(webhook=webhook, success=True).count() == len(receiver.requests)
    assert webhook.success_count + webhook.failure_count == len(receiver.requests)
    assert (webhook.success_count, webhook.failure_count) == (len(receiver.requests), 0)
    assert webhook.last_success_at is not None


def test_an_engine_disabled_webhook_stays_disabled_under_concurrent_renames(
    organization, webhook, receiver, api_client
):
    receiver.default = Reply(status=HTTPStatus.GONE)
    url = f"/api/integrations/webhooks/{webhook.pk}/"
    for round_ in range(15):
        webhook_enable(webhook=webhook)
        trigger(organization, 1)
        engine_done = threading.Event()

        def rename(round_=round_, engine_done=engine_done):
            n = 0
            while not engine_done.is_set() or n < 3:  # a few more once the engine has disabled it
                response = api_client.patch(url, {"name": f"r{round_}-{n}"}, format="json")
                assert response.status_code == HTTPStatus.OK, response.content
                n += 1

        def engine(engine_done=engine_done):
            try:
                time.sleep(0.005 * (round_ % 5))  # land the disable at different points of a PATCH
                drain_until_done()
            finally:
                engine_done.set()

        with Concurrently(engine, rename):
            pass
        webhook.refresh_from_db()
        assert not webhook.is_active, f"re-enabled by a rename in round {round_}"
        assert webhook.disabled_reason == "The endpoint answered 410 Gone."
        assert webhook.disabled_at is not None


def opened_change_form(admin_client, change_url: str, webhook: Webhook) -> dict[str, str]:
    """The admin change form's data as an operator opened it (with its hidden initial values)."""
    form = admin_client.get(change_url).context["adminform"].form
    return {
        "name": "w",
        "url": webhook.url,
        "events": '["*"]',
        "retry_attempts": str(webhook.retry_attempts),
        "is_active": "on",
        **{f"initial-{name}": str(form[name].initial) for name in form.fields if form.fields[name].show_hidden_initial},
    }


def test_admin_edits_do_not_undo_an_engine_disable(organization, receiver, admin_client):
    receiver.default = Reply(status=HTTPStatus.GONE)
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    change_url = f"/admin/webhooks/webhook/{webhook.pk}/change/"
    # The form as an operator opened it, while the webhook was still active.
    data = opened_change_form(admin_client, change_url, webhook)
    trigger(organization, 1)
    engine_done = threading.Event()

    def engine():
        try:
            drain_until_done()
        finally:
            engine_done.set()

    def edit():
        n = 0
        while not engine_done.is_set() or n < 3:
            response = admin_client.post(change_url, {**data, "name": f"w{n}"})
            assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
            n += 1

    with Concurrently(engine, edit):
        pass
    webhook.refresh_from_db()
    assert webhook.name.startswith("w")
    assert not webhook.is_active
    assert webhook.disabled_reason == "The endpoint answered 410 Gone."


def test_an_admin_can_still_enable_a_disabled_webhook_from_the_form(organization, receiver, admin_client):
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"], is_active=False)
    Webhook.objects.filter(pk=webhook.pk).update(consecutive_failures=15)
    change_url = f"/admin/webhooks/webhook/{webhook.pk}/change/"
    data = opened_change_form(admin_client, change_url, webhook)
    assert admin_client.post(change_url, data).status_code == HTTPStatus.FOUND
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.consecutive_failures == 0 and webhook.disabled_at is None


def test_enable_resets_the_failure_count_of_an_active_webhook_too(organization, receiver):
    webhook = webhook_create(organization=organization, name="w", url=receiver.url, events=["*"])
    Webhook.objects.filter(pk=webhook.pk).update(consecutive_failures=12)
    webhook_enable(webhook=webhook)
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.consecutive_failures == 0
