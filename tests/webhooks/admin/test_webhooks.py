import json
import re
from http import HTTPStatus

import pytest
from django import forms
from django.urls import reverse

from common.redaction import REDACTED
from tests.integrations.factories import IntegrationFactory
from webhooks import services, tasks
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
    assert "<svg" in html and "1 succeeded, 0 failed" in html
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
    assert "0 deliveries queued again" in response.content.decode()


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


# --- the form: a wide URL, editable headers, the integration -------------------------------

TOKEN = "Bearer admin-sentinel"


def _change_url(webhook) -> str:
    return reverse("admin:webhooks_webhook_change", args=[webhook.pk])


def _as_opened(admin_client, webhook) -> dict:
    """The change form's fields as the page shows them, ready to post back."""
    form = admin_client.get(_change_url(webhook)).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value  # as rendered (BoundField.value() is already prepared)
    data["initial-is_active"] = "on" if webhook.is_active else ""
    return data


def test_the_url_field_is_wide(admin_client, history):
    html = admin_client.get(_change_url(history)).content.decode()
    [tag] = re.findall(r'<input type="url" name="url"[^>]*>', html)
    assert 'class="vURLField"' in tag and "max-width:48em" in tag and "width:100%" in tag


def test_headers_show_masked_and_are_edited_in_the_form(admin_client, history, receiver):
    html = admin_client.get(_change_url(history)).content.decode()
    assert "&quot;Authorization&quot;: &quot;[redacted]&quot;" in html and "admin-sentinel" not in html

    # "[redacted]" kept: the stored value stays; a new header is added.
    data = _as_opened(admin_client, history)
    data["headers"] = json.dumps({"Authorization": REDACTED, "X-Team": "blue"})
    assert admin_client.post(_change_url(history), data).status_code == HTTPStatus.FOUND
    history.refresh_from_db()
    assert history.headers == {"Authorization": TOKEN, "X-Team": "blue"}

    # A new value replaces it, and is what the receiver gets.
    data["headers"] = json.dumps({"Authorization": "Bearer rotated", "X-Team": "blue"})
    assert admin_client.post(_change_url(history), data).status_code == HTTPStatus.FOUND
    services.webhook_send_test(webhook=history)
    assert receiver.requests[-1].headers["authorization"] == "Bearer rotated"

    # A line removed removes the header.
    data["headers"] = json.dumps({"X-Team": "blue"})
    assert admin_client.post(_change_url(history), data).status_code == HTTPStatus.FOUND
    history.refresh_from_db()
    assert history.headers == {"X-Team": "blue"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("{not json", "Enter a valid JSON."),
        ('["X-Team"]', "Headers must be an object"),
        ('{"webhook-id": "x"}', "set by the delivery itself"),
        ('{"X-Team": "a\\nb"}', "single-line string"),
    ],
)
def test_invalid_headers_are_a_form_error_and_change_nothing(admin_client, history, headers, message):
    data = {**_as_opened(admin_client, history), "headers": headers}
    response = admin_client.post(_change_url(history), data)
    assert response.status_code == HTTPStatus.OK
    assert message in " ".join(response.context["adminform"].form.errors.get("headers", []))
    history.refresh_from_db()
    assert history.headers == {"Authorization": TOKEN}


def test_undecryptable_headers_are_kept_unless_entered_again(admin_client, history, use_fernet_keys):
    from django.conf import settings

    use_fernet_keys(["a-new-key-only", *settings.FERNET_KEYS])
    services.webhook_update(webhook=history, name="renamed")  # the row is written, headers untouched
    use_fernet_keys(["a-new-key-only"])  # the key the headers were written with is gone
    page = admin_client.get(_change_url(history)).content.decode()
    assert "cannot be decrypted with FERNET_KEYS" in page
    data = _as_opened(admin_client, history)
    assert data.get("headers") in (None, "", "null")
    data["headers"] = ""
    assert admin_client.post(_change_url(history), {**data, "name": "again"}).status_code == HTTPStatus.FOUND
    assert not Webhook.objects.get(pk=history.pk).headers_readable  # still the old ciphertext
    data["headers"] = json.dumps({"X-Team": "green"})
    assert admin_client.post(_change_url(history), data).status_code == HTTPStatus.FOUND
    assert Webhook.objects.get(pk=history.pk).headers == {"X-Team": "green"}


def test_the_integration_is_chosen_in_the_form_among_the_webhooks_organization(
    admin_client, history, organization, other_organization
):
    mine = IntegrationFactory(organization=organization, name="HR")
    theirs = IntegrationFactory(organization=other_organization, name="Their HR")
    form = admin_client.get(_change_url(history)).context["adminform"].form
    assert list(form.fields["integration"].queryset) == [mine]
    data = {**_as_opened(admin_client, history), "integration": str(mine.pk)}
    assert admin_client.post(_change_url(history), data).status_code == HTTPStatus.FOUND
    assert Webhook.objects.get(pk=history.pk).integration == mine

    data["integration"] = str(theirs.pk)
    response = admin_client.post(_change_url(history), data)
    assert response.status_code == HTTPStatus.OK and "integration" in response.context["adminform"].form.errors
    assert Webhook.objects.get(pk=history.pk).integration == mine


def test_add_with_headers_and_an_integration(admin_client, organization, other_organization, receiver):
    integration = IntegrationFactory(organization=organization, name="HR")
    data = {
        "organization": str(organization.pk),
        "name": "new",
        "url": receiver.url,
        "events": '["*"]',
        "integration": str(integration.pk),
        "headers": json.dumps({"Authorization": "Bearer typed-in", "X-Team": "blue"}),
        "retry_attempts": 3,
        "is_active": "on",
    }
    other = IntegrationFactory(organization=other_organization, name="Theirs")
    response = admin_client.post(reverse("admin:webhooks_webhook_add"), {**data, "integration": str(other.pk)})
    assert response.status_code == HTTPStatus.OK and "integration" in response.context["adminform"].form.errors
    assert admin_client.post(reverse("admin:webhooks_webhook_add"), data).status_code == HTTPStatus.FOUND
    webhook = Webhook.objects.get(name="new")
    assert webhook.integration == integration
    assert webhook.headers == {"Authorization": "Bearer typed-in", "X-Team": "blue"}


def test_recent_attempts_link_to_each_log_and_to_all_of_them(admin_client, history):
    log = WebhookLog.objects.get()
    html = admin_client.get(_change_url(history)).content.decode()
    assert reverse("admin:webhooks_webhooklog_change", args=[log.pk]) in html
    assert f"{reverse('admin:webhooks_webhooklog_changelist')}?webhook={history.pk}" in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</a>", html)  # to the second


def test_action_messages_count_in_words(admin_client, history):
    response = admin_client.post(
        reverse("admin:webhooks_webhook_changelist"),
        {"action": "enable", "_selected_action": [str(history.pk)]},
        follow=True,
    )
    assert "Enabled 1 webhook." in [str(m) for m in response.context["messages"]]


@pytest.mark.parametrize(("field", "value"), [("rate_limit", "-1"), ("rate_limit", "0"), ("max_concurrency", "0")])
def test_invalid_flow_fields_are_a_form_error_and_change_nothing(admin_client, history, field, value):
    data = {**_as_opened(admin_client, history), field: value}
    response = admin_client.post(_change_url(history), data)
    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors.get(field)
    history.refresh_from_db()
    assert (history.rate_limit, history.max_concurrency) == (None, None)


def test_flow_fields_are_saved_from_the_admin(admin_client, history):
    data = {**_as_opened(admin_client, history), "rate_limit": "2.5", "max_concurrency": "3", "ordered": "on"}
    response = admin_client.post(_change_url(history), data)
    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    history.refresh_from_db()
    assert (history.rate_limit, history.max_concurrency, history.ordered) == (2.5, 3, True)
