"""webhook_deliveries and webhook_events become tables partitioned by day on created_at, as
webhook_logs is since 0011 (PostgreSQL only; elsewhere only the foreign keys change). See
webhooks/partitions.py and docs/RELIABILITY.md ("Retention at scale").

- The foreign keys logs -> deliveries and deliveries -> events stop being database
  constraints (a foreign key to a partitioned table needs its partition key): the ORM's
  cascades are unchanged, retention and erasure delete logs, deliveries, events in order.
- `webhook_event_keys` (PostgreSQL) holds the events' idempotency keys, unique per
  organization, filled from the events; the trigger statement inserts into it.
- The rows are copied in the migration's transaction: writers to the two tables wait.
- In reverse, the foreign keys come back: first the rows that would violate them are
  deleted (deliveries whose event is gone, then logs whose delivery is gone: possible once
  the constraints were dropped; the old schema's cascade would have deleted them), and
  their counts printed."""

import django.db.models.deletion
from django.db import migrations, models


def forwards(apps, schema_editor):
    from webhooks import partitions

    partitions.convert(schema_editor, partitioned=True, table=partitions.DELIVERIES)
    partitions.convert(schema_editor, partitioned=True, table=partitions.EVENTS)
    partitions.create_event_keys(schema_editor)


def backwards(apps, schema_editor):
    from webhooks import partitions

    deliveries, logs = partitions.delete_dangling(schema_editor)
    if deliveries or logs:
        print(f"\n  webhooks 0014 reverse: deleted {deliveries} deliveries whose event is gone, {logs} logs whose delivery is gone")
    partitions.drop_event_keys(schema_editor)
    partitions.convert(schema_editor, partitioned=False, table=partitions.EVENTS)
    partitions.convert(schema_editor, partitioned=False, table=partitions.DELIVERIES)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0013_trigger_filter_sql"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="event",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="webhooks.event",
            ),
        ),
        migrations.AlterField(
            model_name="webhooklog",
            name="delivery",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="logs",
                to="webhooks.delivery",
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
