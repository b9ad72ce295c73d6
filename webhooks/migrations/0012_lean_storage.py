"""Lean storage (bench/storage.py): attempt logs stop storing what they can rebuild, and
two indexes shrink to the rows their queries read.

- `webhook_logs.message_id` is dropped: it is always `msg_<delivery id hex>`.
- `webhook_logs.request_headers` keeps its column and data but becomes the model's
  `custom_headers`: new rows store only the custom headers; `WebhookLog.request_headers`
  rebuilds the standard ones (older rows keep theirs, and read as before but for the
  signature, which is no longer shown).
- `log_webhook_success` (webhook, success, created) becomes `log_webhook_failed`, partial
  on failures: `?success=true` reads `log_webhook_created`.
- `delivery_webhook_state` becomes `delivery_webhook_unfinished`, partial on pending and
  failed deliveries: the queries that use it never ask for succeeded ones.

On PostgreSQL, indexes of the partitioned webhook_logs are created and dropped on every
partition by the same statements; dropping a column rewrites nothing (new rows are smaller,
old ones shrink as they are pruned).
"""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0011_scale_partitions"),
    ]

    operations = [
        migrations.RemoveField(model_name="webhooklog", name="message_id"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField(model_name="webhooklog", old_name="request_headers", new_name="custom_headers"),
                migrations.AlterField(
                    model_name="webhooklog",
                    name="custom_headers",
                    field=models.JSONField(db_column="request_headers", default=dict),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddIndex(
            model_name="webhooklog",
            index=models.Index(
                condition=Q(success=False), fields=["webhook", "-created_at"], name="log_webhook_failed"
            ),
        ),
        migrations.RemoveIndex(model_name="webhooklog", name="log_webhook_success"),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=Q(state__in=["pending", "failed"]),
                fields=["webhook", "state", "created_at"],
                name="delivery_webhook_unfinished",
            ),
        ),
        migrations.RemoveIndex(model_name="delivery", name="delivery_webhook_state"),
    ]
