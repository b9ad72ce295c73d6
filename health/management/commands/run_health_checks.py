import uuid

from django.core.management.base import BaseCommand, CommandError

from common.text import count_of
from health.checks import UNHEALTHY
from health.models import HealthCheck
from health.services import health_run
from integrations import providers
from integrations.models import Integration
from organizations.models import Organization

STATUS_ORDER = {HealthCheck.Status.UNHEALTHY: 0, HealthCheck.Status.DEGRADED: 1, HealthCheck.Status.HEALTHY: 2}


class Command(BaseCommand):
    help = (
        "Check integrations now (concurrently) and record the results. Without --integration, "
        "checks every active integration (and those in error, to see them recover), narrowed by "
        "--provider and --organization. Integrations never connected (pending, never authorized, "
        "no credentials) are listed as not connected and not checked. "
        "Exits 1 when any checked integration is unhealthy. "
        "Use -v 2 to list every integration in the summary, not only the failing ones."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--integration",
            action="append",
            default=[],
            metavar="ID",
            help="an integration id (repeatable); checked whatever its status, unless never connected",
        )
        parser.add_argument("--provider", help="only this provider, e.g. slack")
        parser.add_argument("--organization", metavar="SLUG", help="only this organization")

    def handle(self, *args, integration, provider, organization, verbosity, **options):
        ids = self._integration_ids(integration)
        if provider is not None and providers.get_provider(provider) is None:
            raise CommandError(f"Unknown provider {provider!r} (known: {', '.join(providers.PROVIDERS)}).")
        org = None
        if organization is not None:
            org = Organization.objects.filter(slug=organization).first()
            if org is None:
                raise CommandError(f"Unknown organization {organization!r}.")

        def progress(done: int, total: int) -> None:
            if verbosity >= 1:
                self.stdout.write(f"  checked {done}/{total}")

        summary = health_run(integration_ids=ids, provider=provider, organization=org, force=True, progress=progress)
        self._report(summary, verbosity)
        if summary.unhealthy:
            raise CommandError(f"{count_of(summary.unhealthy, 'integration')} unhealthy.", returncode=1)

    def _integration_ids(self, values: list[str]) -> list[uuid.UUID] | None:
        if not values:
            return None
        ids = []
        for value in values:
            try:
                ids.append(uuid.UUID(value))
            except ValueError:
                raise CommandError(f"Not an integration id: {value!r}.") from None
        found = set(Integration.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [str(pk) for pk in ids if pk not in found]
        if missing:
            label = "Unknown integration id" if len(missing) == 1 else "Unknown integration ids"
            raise CommandError(f"{label}: {', '.join(missing)}.")
        return ids

    def _report(self, summary, verbosity: int) -> None:
        if not summary.checks and not summary.requested:
            self.stdout.write("No integrations match.")
            return
        shown = [c.integration_id for c in summary.checks] + [n.integration_id for n in summary.not_connected]
        names = {
            i.pk: i
            for i in Integration.objects.filter(pk__in=shown)
            .select_related("organization")
            .only("id", "name", "provider", "organization__slug")
        }
        rows = sorted(summary.checks, key=lambda c: (STATUS_ORDER.get(c.status, 3), names[c.integration_id].name))
        if verbosity < 2:
            rows = [c for c in rows if c.status != HealthCheck.Status.HEALTHY]
        table = [("STATUS", "MS", "ORGANIZATION", "PROVIDER", "INTEGRATION", "ID", "ERROR")]
        for c in rows:
            i = names[c.integration_id]
            ms = "-" if c.response_time_ms is None else str(c.response_time_ms)
            table.append((c.status, ms, i.organization.slug, i.provider, i.name, str(i.pk), c.error))
        for n in sorted(summary.not_connected, key=lambda n: n.name):
            i = names.get(n.integration_id)
            if i is not None:  # deleted meanwhile otherwise
                table.append(("not connected", "-", i.organization.slug, i.provider, i.name, str(i.pk), n.reason))
        if len(table) > 1:
            widths = [max(len(row[n]) for row in table) for n in range(len(table[0]) - 1)]
            self.stdout.write("")
            for row in table:
                padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
                self.stdout.write("  ".join([*padded, row[-1]]))
        counts = summary.counts
        extra = ""
        if summary.not_connected:
            extra += f"; {len(summary.not_connected)} not connected (not checked)"
        if summary.skipped:
            extra += f"; {summary.skipped} skipped (being checked by another run)"
        self.stdout.write("")
        self.stdout.write(
            f"Checked {count_of(len(summary.checks), 'integration')} in {summary.seconds:.2f} s: "
            f"{counts['healthy']} healthy, {counts['degraded']} degraded, {counts[UNHEALTHY]} unhealthy{extra}."
        )
