"""Custom headers are encrypted at rest: the migration moves existing rows (both ways), and
headers no key decrypts never break a page or leak into a request."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from common.encryption import _write_tokens
from common.redaction import REDACTED
from tests.api_errors import error_fields
from tests.migrating import latest, migrate_to
from webhooks.engine.policy import UNREADABLE_HEADERS
from webhooks.models import Webhook
from webhooks.services import webhook_create, webhook_send_test

BASE = "/api/integrations/webhooks/"
BEFORE = [("webhooks", "0003_dispatch_marker")]
AFTER = [("webhooks", "0004_encrypt_webhook_headers")]
HEADERS = {"Authorization": "Bearer migrated-secret-77", "X-Team": "blue"}


def _raw_headers(pk) -> bytes | str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT headers FROM webhooks WHERE id = %s", [Webhook._meta.pk.get_db_prep_value(pk, connection)]
        )
        (value,) = cursor.fetchone()
    return value if isinstance(value, str) else bytes(value)


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_headers_and_back(organization):
    old_apps = migrate_to(BEFORE)
    try:
        OldWebhook = old_apps.get_model("webhooks", "Webhook")
        old = OldWebhook.objects.create(
            organization_id=organization.pk,
            name="old",
            url="https://a.test/",
            events=["*"],
            headers=HEADERS,
            secret="x",
        )
        assert "migrated-secret-77" in str(_raw_headers(old.pk))

        after_apps = migrate_to(AFTER)
        raw = _raw_headers(old.pk)
        assert isinstance(raw, bytes) and raw.startswith(b"gAAAAA") and b"migrated-secret-77" not in raw
        # The model as of that migration: later ones add columns (e.g. 0006's flow fields).
        assert after_apps.get_model("webhooks", "Webhook").objects.get(pk=old.pk).headers == HEADERS

        old_apps = migrate_to(BEFORE)
        assert old_apps.get_model("webhooks", "Webhook").objects.get(pk=old.pk).headers == HEADERS
    finally:
        migrate_to(latest())


@pytest.mark.django_db
def test_headers_no_key_decrypts_read_as_none_and_are_not_sent(api_client, organization, receiver):
    webhook = webhook_create(organization=organization, name="h", url=receiver.url, events=["*"], headers=HEADERS)
    _write_tokens(Webhook, webhook.pk, {"headers": Fernet(Fernet.generate_key()).encrypt(b'{"A":"b"}')})

    response = api_client.get(f"{BASE}{webhook.pk}/")
    assert response.status_code == HTTPStatus.OK and response.json()["headers"] == {}
    log = webhook_send_test(webhook=Webhook.objects.get(pk=webhook.pk))
    assert log.error == UNREADABLE_HEADERS and not receiver.requests

    masked = api_client.patch(f"{BASE}{webhook.pk}/", {"headers": {"Authorization": REDACTED}}, format="json")
    assert masked.status_code == HTTPStatus.BAD_REQUEST and "headers" in error_fields(masked)
    entered = api_client.patch(f"{BASE}{webhook.pk}/", {"headers": {"Authorization": "Bearer new"}}, format="json")
    assert entered.status_code == HTTPStatus.OK, entered.json()
    assert Webhook.objects.get(pk=webhook.pk).headers == {"Authorization": "Bearer new"}
