from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from organizations.services import organization_create


class Command(BaseCommand):
    help = "Create an organization (tenant)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="unique slug, e.g. acme")
        parser.add_argument("--name", default="", help="display name (defaults to the slug)")

    def handle(self, *args, slug, name, **options):
        try:
            organization = organization_create(slug=slug, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created organization {organization.slug} ({organization.id})")
