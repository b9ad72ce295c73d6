from django.core.management.base import BaseCommand

from common.services import schedules_setup


class Command(BaseCommand):
    help = "Create or update the periodic django-q2 schedules (idempotent)."

    def handle(self, *args, **options):
        results = schedules_setup()
        if not results:
            self.stdout.write("No schedules registered.")
        for schedule, created in results:
            verb = "created" if created else "updated"
            self.stdout.write(f"{verb}: {schedule.name} ({schedule.func}, every {schedule.minutes} min)")
