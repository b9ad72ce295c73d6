from django.core.management.base import BaseCommand, CommandError

from organizations.models import Organization
from organizations.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organization; the key is printed alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="organization slug")
        parser.add_argument("--name", default="API key")
        parser.add_argument("--read-only", action="store_true", help="the key may only read")

    def handle(self, *args, organization, name, read_only, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        api_key, raw_key = api_key_create(organization=org, name=name, read_only=read_only)
        mode = "read-only" if read_only else "read/write"
        self.stdout.write(f"Created {mode} API key {api_key.name!r} ({api_key.prefix}) for {org.slug}.")
        self.stdout.write("Store it now: it will not be shown again.")
        self.stdout.write(raw_key)
