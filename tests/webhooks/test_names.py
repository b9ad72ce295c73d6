"""Webhook names are unique per organization, also between writers at the same time."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError

from tests.concurrency import Concurrently
from webhooks.models import Webhook
from webhooks.services import webhook_create, webhook_update


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_and_renames_to_one_name_leave_one_webhook_of_that_name(organization):
    other = webhook_create(organization=organization, name="other", url="https://93.184.216.34/", events=["*"])
    for round_ in range(6):
        name = f"crm {round_}"
        refused: list[ValidationError] = []
        lock = threading.Lock()

        def attempt(write, refused=refused):
            try:
                write()
            except ValidationError as error:  # the name check, or the constraint behind it
                with lock:
                    refused.append(error)

        def create(name=name):
            webhook_create(organization=organization, name=name, url="https://93.184.216.34/", events=["*"])

        def rename(name=name):
            webhook_update(webhook=Webhook.objects.get(pk=other.pk), name=name)

        with Concurrently(lambda: attempt(create), lambda: attempt(create), lambda: attempt(rename)):
            pass
        assert Webhook.objects.filter(organization=organization, name=name).count() == 1
        assert len(refused) == 2 and all("already exists" in " ".join(e.messages) for e in refused), refused
        Webhook.objects.filter(pk=other.pk).update(name="other")
        Webhook.objects.filter(organization=organization, name=name).exclude(pk=other.pk).delete()
