"""The webhook change form: the content filter (JSON, validated) and the transform are edited
there; OAuth2 settings and the client certificate show read-only, without their secrets."""

import json
from http import HTTPStatus

import pytest

from tests.webhooks.admin.test_webhooks import _as_opened, _change_url
from webhooks.models import Webhook
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db

SECRET = "admin-client-secret-sentinel"


@pytest.fixture
def webhook(organization, receiver):
    return webhook_create(
        organization=organization,
        name="ATS",
        url=receiver.url,
        events=["*"],
        filter={"data.job.department": {"$in": ["engineering"]}},
        transform="data.job",
        auth={
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.example.com/token",
            "client_id": "cid",
            "client_secret": SECRET,
        },
    )


def test_the_change_form_shows_filter_transform_and_auth_without_the_secret(admin_client, webhook):
    html = admin_client.get(_change_url(webhook)).content.decode()
    assert "&quot;data.job.department&quot;" in html and 'value="data.job"' in html
    assert "OAuth2 client credentials: https://auth.example.com/token, client cid; secret set." in html
    assert SECRET not in html


def test_the_filter_is_validated_and_saved_through_the_form(admin_client, webhook, organization):
    data = _as_opened(admin_client, webhook)
    data["filter"] = json.dumps({"data.job.level": {"$between": [1, 2]}})
    response = admin_client.post(_change_url(webhook), data)
    assert response.status_code == HTTPStatus.OK
    assert "data.job.level.$between: unknown operator" in " ".join(response.context["adminform"].form.errors["filter"])
    data["filter"], data["transform"] = json.dumps({"type": {"$startsWith": "offer."}}), "[["
    response = admin_client.post(_change_url(webhook), data)
    assert "Invalid JMESPath expression" in " ".join(response.context["adminform"].form.errors["transform"])
    webhook.refresh_from_db()
    assert webhook.filter == {"data.job.department": {"$in": ["engineering"]}}  # nothing changed

    data["transform"] = "data"
    assert admin_client.post(_change_url(webhook), data).status_code == HTTPStatus.FOUND
    webhook = Webhook.objects.get(pk=webhook.pk)
    assert webhook.filter == {"type": {"$startsWith": "offer."}} and webhook.transform == "data"
    assert webhook.auth["client_secret"] == SECRET  # untouched by the form
    assert trigger_event(organization=organization, event="job.created", payload={}).delivery_count == 0
    data["filter"] = ""
    assert admin_client.post(_change_url(webhook), data).status_code == HTTPStatus.FOUND
    assert Webhook.objects.get(pk=webhook.pk).filter is None
