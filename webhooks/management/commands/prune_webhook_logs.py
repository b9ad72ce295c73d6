from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webhooks import app_settings
from webhooks.services import logs_prune


class Command(BaseCommand):
    help = (
        "Delete webhook attempt logs older than the retention (WEBHOOKS_LOG_RETENTION_DAYS), "
        "then finished deliveries and events left without deliveries, in batches."
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
            f"{verb} {result.logs} log(s), {result.deliveries} finished delivery(ies) and "
            f"{result.events} event(s) older than {days} day(s)."
        )
