import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from common.text import count_of
from organizations.models import Organization
from webhooks.services import trigger_event


class Command(BaseCommand):
    help = "Trigger a platform event for an organization; it is delivered to subscribed webhooks."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="organization slug")
        parser.add_argument("event", help="event type, e.g. application.created")
        parser.add_argument("--payload", default="{}", help="the event's data as a JSON object")
        parser.add_argument("--idempotency-key", default=None)

    def handle(self, *args, organization, event, payload, idempotency_key, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization with slug {organization!r}.")
        try:
            data = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"--payload is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})."
            ) from None
        try:
            record = trigger_event(organization=org, event=event, payload=data, idempotency_key=idempotency_key)
        except ValidationError as exc:
            # Keyed errors name the field or the payload's failing path (payload.candidate.id).
            if hasattr(exc, "error_dict"):
                raise CommandError(" ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
            raise CommandError(" ".join(exc.messages)) from None
        if record.is_repeat:
            self.stdout.write(
                f"Already triggered as {record.type} {record.id} with this idempotency key "
                f"({count_of(record.delivery_count, 'delivery')}); nothing new sent."
            )
            return
        self.stdout.write(f"Triggered {record.type} {record.id}: {count_of(record.delivery_count, 'delivery')}.")
