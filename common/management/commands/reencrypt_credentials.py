from django.core.management.base import BaseCommand, CommandError

from common.encryption import STALE, UNDECRYPTABLE, CredentialsUndecryptable, check_keys, reencrypt_all
from common.fields import UNDECRYPTABLE_HELP
from common.text import count_of


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value of every app (integration credentials, OAuth states, "
        "webhook signing secrets) with the first key of FERNET_KEYS; run after prepending a new "
        "key, then the old key can be removed. Safe to re-run. With --check, change nothing: "
        "exit non-zero while any value still needs a key other than the first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200, help="rows per transaction (default 200)")
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; report values that need an older key or cannot be decrypted (exit 1 if any)",
        )

    def handle(self, *args, batch_size: int, check: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        verb = "checked" if check else "re-encrypted"

        def progress(label: str, done: int, total: int) -> None:
            self.stdout.write(f"{label}: {done}/{total} {verb}")

        try:
            if check:
                self._check(batch_size, progress)
                return
            report = reencrypt_all(batch_size=batch_size, progress=progress)
        except (CredentialsUndecryptable, CommandError) as error:
            raise CommandError(str(error)) from None
        except Exception as error:  # one line, never a traceback with secrets in it
            raise CommandError(f"Re-encryption failed: {type(error).__name__}.") from None
        summary = ", ".join(f"{label} {c.reencrypted} re-encrypted" for label, c in report.fields.items())
        self.stdout.write(self.style.SUCCESS(f"Done: {summary}. Every value now uses the first key."))

    def _check(self, batch_size, progress) -> None:
        report = check_keys(batch_size=batch_size, progress=progress)
        stale, lost = report.total(STALE), report.total(UNDECRYPTABLE)
        for line in report.lines(STALE):
            self.stdout.write(f"needs an older key: {line}")
        for line in report.lines(UNDECRYPTABLE):
            self.stdout.write(f"cannot be decrypted: {line}")
        if not stale and not lost:
            self.stdout.write(self.style.SUCCESS("All encrypted values use the first key of FERNET_KEYS."))
            return
        problems = []
        if stale:
            verb = "needs" if stale == 1 else "need"
            problems.append(f"{count_of(stale, 'value')} {verb} a key other than the first: run reencrypt_credentials")
        if lost:
            problems.append(f"{count_of(lost, 'value')} {UNDECRYPTABLE_HELP}")
        raise CommandError("; ".join(problems) + ".")
