from django.core.management.base import BaseCommand, CommandError

from integrations.encryption import CredentialsUndecryptable, reencrypt_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential with the first key of FERNET_KEYS (run after "
        "prepending a new key; then the old key can be removed). Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200, help="rows per transaction (default 200)")

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")

        def progress(label: str, done: int, total: int) -> None:
            self.stdout.write(f"{label}: {done}/{total} re-encrypted")

        try:
            counts = reencrypt_all(batch_size=batch_size, progress=progress)
        except CredentialsUndecryptable as error:
            raise CommandError(str(error)) from None
        except Exception as error:  # one line, never a traceback with secrets in it
            raise CommandError(f"Re-encryption failed: {type(error).__name__}.") from None
        summary = ", ".join(f"{label} {count}" for label, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Done: {summary}."))
