from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from organizations.models import Membership, Organization
from organizations.services import membership_set


class Command(BaseCommand):
    help = "Make a user a member of an organization with a role (or change their role)."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="organization slug")
        parser.add_argument("username", help="an existing user, e.g. one made by createsuperuser")
        parser.add_argument(
            "--role",
            default=Membership.Role.VIEWER,
            choices=Membership.Role.values,
            help="admin (read/write) or viewer (read-only); default viewer",
        )

    def handle(self, *args, organization, username, role, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        user_model = get_user_model()
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        try:
            membership = membership_set(user=user, organization=org, role=role)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{username} is now {membership.role} of {org.slug}.")
