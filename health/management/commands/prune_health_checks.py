from django.core.management.base import BaseCommand, CommandError

from common.text import count_of
from health import app_settings
from health.services import health_history_prune


class Command(BaseCommand):
    help = "Delete health-check history older than the retention (HEALTH_HISTORY_RETENTION_DAYS), in batches."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, default=None, help="default: HEALTH_HISTORY_RETENTION_DAYS")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args, older_than_days, batch_size, dry_run, **options):
        days = app_settings.history_retention_days() if older_than_days is None else older_than_days
        if days < 0:
            raise CommandError("--older-than-days must be 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        count = health_history_prune(older_than_days=days, batch_size=batch_size, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {count_of(count, 'health check')} older than {count_of(days, 'day')}.")
