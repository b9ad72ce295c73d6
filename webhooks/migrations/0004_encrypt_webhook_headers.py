"""Webhook custom headers are encrypted at rest (their values may be `Authorization` secrets).

The plain JSON column is copied into a new encrypted one, then replaced by it. Reversible:
going back decrypts the headers into a plain JSON column again.
"""

from django.db import migrations

import integrations.fields
from common.fields import is_readable


def encrypt_headers(apps, schema_editor):
    Webhook = apps.get_model("webhooks", "Webhook")
    for webhook in Webhook.objects.only("pk", "headers").iterator():
        webhook.headers_encrypted = webhook.headers or {}
        webhook.save(update_fields=["headers_encrypted"])


def decrypt_headers(apps, schema_editor):
    Webhook = apps.get_model("webhooks", "Webhook")
    for webhook in Webhook.objects.only("pk", "headers_encrypted").iterator():
        if not is_readable(webhook.headers_encrypted):
            raise RuntimeError(
                f"The headers of webhook {webhook.pk} cannot be decrypted with FERNET_KEYS: "
                "put the old key back before migrating backwards."
            )
        webhook.headers = webhook.headers_encrypted or {}
        webhook.save(update_fields=["headers"])


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0003_dispatch_marker"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhook",
            name="headers_encrypted",
            field=integrations.fields.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(encrypt_headers, decrypt_headers, elidable=False),
        migrations.RemoveField(model_name="webhook", name="headers"),
        migrations.RenameField(model_name="webhook", old_name="headers_encrypted", new_name="headers"),
    ]
