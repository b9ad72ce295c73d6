"""The Celery app is loaded with Django (Celery's "First steps with Django"), so that
`fire_webhook.delay()` in the triggering process publishes to the configured broker."""

from .celery import app as celery_app

__all__ = ["celery_app"]
