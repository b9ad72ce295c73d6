from collections import Counter

from django.core.management.base import BaseCommand

from common.services import CREATED, UNCHANGED, UPDATED, schedules_setup
from common.text import count_of


class Command(BaseCommand):
    help = (
        "Create or update the periodic django-q2 schedules (idempotent): prints each schedule "
        "created or updated, then a summary; 'unchanged' when there was nothing to do."
    )

    def handle(self, *args, verbosity, **options):
        results = schedules_setup()
        if not results:
            self.stdout.write("No schedules registered.")
            return
        for schedule, outcome in results:
            if outcome != UNCHANGED or verbosity >= 2:
                self.stdout.write(f"{outcome}: {schedule.name} ({schedule.func}, every {schedule.minutes} min)")
        counts = Counter(outcome for _, outcome in results)
        if counts[UNCHANGED] == len(results):
            self.stdout.write(f"Schedules unchanged ({count_of(len(results), 'schedule')} up to date).")
            return
        done = [f"{counts[o]} {o}" for o in (CREATED, UPDATED, UNCHANGED) if counts[o]]
        self.stdout.write(f"Schedules: {', '.join(done)}.")
