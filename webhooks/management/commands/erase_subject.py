import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from organizations.models import Organization
from webhooks.services.erasure import subject_erase


def counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in sorted(counts.items())) or "none"


class Command(BaseCommand):
    help = (
        "Erase what is stored about a candidate (event payloads, their deliveries and logs, log excerpts, "
        "request copies) in an organization; leaves a tombstone and prints the counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", help="organization slug")
        parser.add_argument("--candidate-id", default=None, help="the candidate's id on the hiring platform")
        parser.add_argument("--email", default=None, help="the candidate's email address")
        parser.add_argument("--by", default=None, help="who asked, for the tombstone (default: the OS user)")

    def handle(self, *args, organization, candidate_id, email, by, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        if by is None:
            try:
                by = f"erase_subject ({getpass.getuser()})"
            except (KeyError, OSError):
                by = "erase_subject"
        try:
            result = subject_erase(organization=org, candidate_id=candidate_id, email=email, erased_by=by)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise CommandError(
                    " ".join(f"--{k.replace('_', '-')}: {' '.join(v)}" for k, v in exc.message_dict.items())
                ) from None
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            f"Erased (tombstone {result.erasure.id}): deleted {counts_line(result.deleted)}; "
            f"redacted {counts_line(result.redacted)}."
        )
