"""Small helpers shared by the webhooks tests."""

from datetime import timedelta

from django.utils import timezone

from webhooks.models import Delivery


def make_due() -> None:
    """Pretend the retry delay has passed."""
    Delivery.objects.filter(state=Delivery.State.PENDING).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
