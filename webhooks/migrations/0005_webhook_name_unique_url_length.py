"""Webhook names unique per organization, like integration names; URLs up to 2048 characters.

Existing duplicates are renamed first, deterministically: in each organization the oldest
webhook of a name (by `created_at`, then id) keeps it, the next ones become "name (2)",
"name (3)"... skipping names already in use, cut to fit the 200 characters.
"""

from django.db import migrations, models

NAME_LENGTH = 200


def _candidate(name: str, number: int) -> str:
    suffix = f" ({number})"
    return name[: NAME_LENGTH - len(suffix)] + suffix


def rename_duplicates(apps, schema_editor):
    Webhook = apps.get_model("webhooks", "Webhook")
    duplicated = (
        Webhook.objects.values("organization_id", "name")
        .annotate(count=models.Count("id"))
        .filter(count__gt=1)
        .order_by("organization_id", "name")
    )
    for group in duplicated:
        organization_id, name = group["organization_id"], group["name"]
        taken = set(Webhook.objects.filter(organization_id=organization_id).values_list("name", flat=True))
        webhooks = Webhook.objects.filter(organization_id=organization_id, name=name).order_by("created_at", "id")
        number = 1
        for webhook in list(webhooks.only("id", "name"))[1:]:
            number += 1
            while _candidate(name, number) in taken:
                number += 1
            new_name = _candidate(name, number)
            taken.add(new_name)
            Webhook.objects.filter(pk=webhook.pk).update(name=new_name)


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_connection_issues_token_lifecycle"),
        ("organizations", "0001_initial"),
        ("webhooks", "0004_encrypt_webhook_headers"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhook",
            name="url",
            field=models.URLField(max_length=2048),
        ),
        migrations.AlterField(
            model_name="webhooklog",
            name="request_url",
            field=models.URLField(max_length=2048),
        ),
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop, elidable=False),
        migrations.AddConstraint(
            model_name="webhook",
            constraint=models.UniqueConstraint(
                fields=("organization", "name"), name="webhook_unique_name_per_organization"
            ),
        ),
    ]
