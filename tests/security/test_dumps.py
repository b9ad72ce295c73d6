"""Nothing secret in dumps, nor readable in the database's columns.

Every kind of secret the tests know is stored (API-key and OAuth integration credentials
with tokens, a webhook's signing secret and its previous one after a rotation, sensitive
custom header values, an OAuth state's PKCE verifier); `dumpdata` of every app in every
format, `django.core.serializers` and the admin's history must carry none of them, in any
of their encoded forms. The raw columns hold Fernet tokens only.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core import serializers
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from common.fields import encrypted_fields
from common.redaction import encoded_forms
from integrations.models import CalendarSubscription, OAuthState
from webhooks.models import Webhook
from webhooks.services import webhook_create, webhook_rotate_secret

from .tenants import SENTINEL, make_tenant

pytestmark = pytest.mark.django_db

FORMATS = ["json", "xml", "yaml", "jsonl"]
VERIFIER = f"{SENTINEL}-pkce-verifier-0123456789abcdef0123456789"
HEADER_TOKEN = f"{SENTINEL}-x-api-key-value"
CHANNEL_TOKEN = f"{SENTINEL}-calendar-channel-token"


@pytest.fixture
def secrets() -> list[str]:
    """Store one of every secret; return their values."""
    tenant = make_tenant("acme")
    rotated = webhook_rotate_secret(webhook=tenant.webhook)
    extra = webhook_create(
        organization=tenant.organization,
        name="keyed",
        url="https://hooks.acme.test/keyed",
        events=["*"],
        headers={"X-Api-Key": HEADER_TOKEN, "Cookie": f"session={SENTINEL}-cookie", "X-Plain": "visible"},
    )
    OAuthState.objects.create(
        integration=tenant.oauth_integration,
        organization=tenant.organization,
        state_hash="0" * 64,
        code_verifier=VERIFIER,
        redirect_uri="https://app.test/callback",
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    CalendarSubscription.objects.create(
        organization=tenant.organization,
        integration=tenant.oauth_integration,
        channel_id="chan-acme",
        client_state=CHANNEL_TOKEN,
    )
    values = [s for s in tenant.secrets if s != tenant.raw_key]
    values += [rotated.secret, rotated.previous_secret, extra.secret, VERIFIER, HEADER_TOKEN, CHANNEL_TOKEN]
    values += [f"Bearer {SENTINEL}-acme-header", f"session={SENTINEL}-cookie"]
    assert rotated.previous_secret and all(values)
    return values


def assert_no_secret(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        for form in encoded_forms(secret):
            assert form not in text, f"{where} carries a secret ({secret[:12]}…, as {form[:16]}…)"
    assert SENTINEL not in text, f"{where} carries a sentinel secret"


@pytest.mark.parametrize("fmt", FORMATS)
def test_dumpdata_of_every_app_carries_no_secret(secrets, fmt):
    out = io.StringIO()
    call_command("dumpdata", format=fmt, stdout=out)
    dump = out.getvalue()
    assert "keyed" in dump and "acme idp" in dump  # the rows are there
    assert_no_secret(dump, secrets, f"dumpdata --format {fmt}")


def test_dumpdata_of_webhooks_as_reported(secrets):
    out = io.StringIO()
    call_command("dumpdata", "webhooks.webhook", stdout=out)
    assert "keyed" in out.getvalue()
    assert_no_secret(out.getvalue(), secrets, "dumpdata webhooks.webhook")


@pytest.mark.parametrize("fmt", ["json", "xml", "python"])
def test_serializers_write_every_encrypted_field_blank(secrets, fmt):
    for model, fields in encrypted_fields():
        rows = model._base_manager.all()
        assert rows, f"no {model._meta.label} row to check"
        data = serializers.serialize(fmt, rows)
        assert_no_secret(str(data), secrets, f"serialize({fmt!r}, {model._meta.label})")
        if fmt == "python":
            for row in data:
                assert all(row["fields"][f.name] in ("", None) for f in fields)


def test_raw_columns_hold_ciphertext_only(secrets):
    checked = 0
    for model, fields in encrypted_fields():
        for field in fields:
            table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(field.column)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {column} FROM {table}")
                for (value,) in cursor.fetchall():
                    if value is None:
                        continue
                    raw = bytes(value)
                    assert raw.startswith(b"gAAAAA"), f"{model._meta.label}.{field.name} is not a Fernet token"
                    assert_no_secret(raw.decode("ascii"), secrets, f"the column {model._meta.label}.{field.name}")
                    checked += 1
    assert checked >= 8
    labels = {f"{model._meta.label}.{f.name}" for model, fs in encrypted_fields() for f in fs}
    assert {
        "webhooks.Webhook.headers",
        "webhooks.Webhook.previous_secret",
        "integrations.OAuthState.code_verifier",
    } <= (labels)


def test_admin_history_carries_no_secret(secrets, admin_client):
    webhook = Webhook.objects.get(name="keyed")
    url = reverse("admin:webhooks_webhook_change", args=[webhook.pk])
    page = admin_client.get(url)
    assert_no_secret(page.content.decode(), secrets, "the webhook's admin page")
    response = admin_client.post(
        url,
        {
            "name": "renamed",
            "url": webhook.url,
            "events": '["*"]',
            "retry_attempts": 3,
            "is_active": "on",
            "initial-is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    history = admin_client.get(reverse("admin:webhooks_webhook_history", args=[webhook.pk]))
    assert LogEntry.objects.filter(object_id=str(webhook.pk)).exists()
    assert_no_secret(history.content.decode(), secrets, "the admin history")
    out = io.StringIO()
    call_command("dumpdata", "admin.logentry", stdout=out)
    assert_no_secret(out.getvalue(), secrets, "the admin's log entries")
