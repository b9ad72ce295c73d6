"""Celery as django-webhook's docs set it up: configured from the Django settings, tasks
found in the installed apps (django_webhook.tasks.fire_webhook)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")

app = Celery("peerproj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
