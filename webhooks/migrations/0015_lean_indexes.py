"""Lean indexes (bench/storage.py, docs/RELIABILITY.md "Indexes"): the single-column
`organization_id` indexes Django made for the foreign keys of webhook_logs and
webhook_deliveries go. No query reads them: every read of those tables that names an
organization names the webhook (or the event) too, and the composite indexes led by those
serve it; deleting an organization, and erasing a subject's data, read the tables once.
The events keep theirs (erasure's and the organization cascade's reads of the events).

`delivery_finished` (state, finished_at) becomes `delivery_finished_at` (finished_at) on
succeeded and failed deliveries: pruning walks both states at once by `finished_at`, and an
entry no longer holds the state.

On PostgreSQL both tables are partitioned: dropping (or, backwards, creating) the index on
the parent drops (creates) it on every partition in the same statement.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0001_initial"),
        ("webhooks", "0014_scale_partitions_deliveries_events"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="organization",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="organizations.organization",
            ),
        ),
        migrations.AlterField(
            model_name="webhooklog",
            name="organization",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="organizations.organization",
            ),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("state__in", ["succeeded", "failed"])),
                fields=["finished_at"],
                name="delivery_finished_at",
            ),
        ),
        migrations.RemoveIndex(model_name="delivery", name="delivery_finished"),
    ]
