from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from common.text import count_of
from webhooks import app_settings
from webhooks.services import logs_prune


class Command(BaseCommand):
    help = (
        "Delete webhook attempt logs older than the retention (WEBHOOKS_LOG_RETENTION_DAYS), "
        "then finished deliveries, then events older than that left without deliveries (orphans), in "
        "batches. --dry-run deletes nothing and reports what a run would delete, orphans included."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, default=None, help="default: WEBHOOKS_LOG_RETENTION_DAYS")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args, older_than_days, batch_size, dry_run, **options):
        days = app_settings.log_retention_days() if older_than_days is None else older_than_days
        if days < 0:
            raise CommandError("--older-than-days must be 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")

        def progress(kind: str, done: int) -> None:
            self.stdout.write(f"  {kind}: {done} deleted so far")

        try:
            result = logs_prune(older_than_days=days, batch_size=batch_size, dry_run=dry_run, progress=progress)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {count_of(result.logs, 'log')}, {count_of(result.deliveries, 'finished delivery')}"
            f" and {count_of(result.events, 'event')} left without deliveries, older than {count_of(days, 'day')}."
        )
        if result.partitions_dropped:
            verb = "would be" if dry_run else "were"
            self.stdout.write(
                f"{count_of(len(result.partitions_dropped), 'whole daily partition')} {verb} dropped: "
                f"{', '.join(result.partitions_dropped)}."
            )
        if result.orphans_kept:
            verb = "would be" if dry_run else "are"
            self.stdout.write(
                f"{count_of(result.orphans_kept, 'event')} without deliveries {verb} kept: newer than "
                f"{count_of(days, 'day')}, pruned once older."
            )
