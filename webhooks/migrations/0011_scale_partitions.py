"""webhook_logs becomes a table partitioned by day on created_at (PostgreSQL only; a no-op
elsewhere). The ORM is unchanged: same table name, columns and index names. See
webhooks/partitions.py and docs/RELIABILITY.md ("Retention")."""

from django.db import migrations


def forwards(apps, schema_editor):
    from webhooks import partitions

    partitions.convert(schema_editor, partitioned=True, table=partitions.LOGS)


def backwards(apps, schema_editor):
    from webhooks import partitions

    partitions.convert(schema_editor, partitioned=False, table=partitions.LOGS)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0010_contracts_flow"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
