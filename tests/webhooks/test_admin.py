from http import HTTPStatus

import pytest

from webhooks import tasks
from webhooks.models import Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(organization, receiver):
    webhook = webhook_create(
        organization=organization,
        name="ATS",
        url=receiver.url,
        events=["*"],
        headers={"Authorization": "Bearer admin-sentinel"},
    )
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    return webhook


def test_admin_pages_load_and_never_show_secrets(admin_client, history):
    log = WebhookLog.objects.get()
    delivery = log.delivery
    urls = [
        "/admin/webhooks/webhook/",
        "/admin/webhooks/webhook/?q=ATS",
        "/admin/webhooks/webhook/?is_active__exact=1",
        "/admin/webhooks/webhook/add/",
        f"/admin/webhooks/webhook/{history.pk}/change/",
        "/admin/webhooks/webhooklog/",
        "/admin/webhooks/webhooklog/?success__exact=1&q=ATS",
        f"/admin/webhooks/webhooklog/{log.pk}/change/",
        "/admin/webhooks/delivery/",
        f"/admin/webhooks/delivery/{delivery.pk}/change/",
        "/admin/webhooks/event/",
        f"/admin/webhooks/event/{delivery.event_id}/change/",
    ]
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK, url
        html = response.content.decode()
        assert history.secret not in html and history.secret.removeprefix("whsec_") not in html
        assert "admin-sentinel" not in html


def test_change_page_shows_chart_and_recent_attempts(admin_client, history):
    html = admin_client.get(f"/admin/webhooks/webhook/{history.pk}/change/").content.decode()
    assert "<svg" in html and "1 ok, 0 failed" in html
    assert "job.created" in html


def test_add_through_admin_validates_and_uses_services(admin_client, organization, settings):
    settings.ALLOW_PRIVATE_URLS = False
    data = {
        "organization": organization.pk,
        "name": "x",
        "url": "http://127.0.0.1/hook",
        "events": '["job.created"]',
        "retry_attempts": 5,
        "is_active": "on",
    }
    response = admin_client.post("/admin/webhooks/webhook/add/", data)
    assert response.status_code == HTTPStatus.OK and not Webhook.objects.exists()
    data["url"] = "https://93.184.216.34/hook"
    response = admin_client.post("/admin/webhooks/webhook/add/", data, follow=True)
    webhook = Webhook.objects.get()
    assert webhook.secret.startswith("whsec_")
    assert any(webhook.secret in str(m) for m in response.context["messages"])


def test_actions(admin_client, history, receiver):
    def act(action):
        return admin_client.post(
            "/admin/webhooks/webhook/", {"action": action, "_selected_action": [str(history.pk)]}, follow=True
        )

    act("disable")
    history.refresh_from_db()
    assert history.is_active is False
    act("enable")
    history.refresh_from_db()
    assert history.is_active is True
    act("send_test")
    assert len(receiver.wait_for(2)) == 2
    old_secret = history.secret
    act("rotate_secret")
    history.refresh_from_db()
    assert history.secret != old_secret and history.previous_secret == old_secret
    response = act("recover_failed")
    assert "0 delivery(ies) queued again" in response.content.decode()


def test_log_admin_is_read_only(admin_client, history):
    log = WebhookLog.objects.get()
    assert admin_client.get("/admin/webhooks/webhooklog/add/").status_code == HTTPStatus.FORBIDDEN
    admin_client.post(f"/admin/webhooks/webhooklog/{log.pk}/change/", {"error": "x"})
    log.refresh_from_db()
    assert log.error == ""


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
