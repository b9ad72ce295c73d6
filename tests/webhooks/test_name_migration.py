"""Migration webhooks 0005: duplicate webhook names are renamed deterministically, then unique."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from tests.migrating import latest, migrate_to
from webhooks.models import Webhook

BEFORE = [("webhooks", "0004_encrypt_webhook_headers")]
AFTER = [("webhooks", "0005_webhook_name_unique_url_length")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_duplicates_oldest_first_and_adds_the_constraint(organization, other_organization):
    old_apps = migrate_to(BEFORE)
    try:
        OldWebhook = old_apps.get_model("webhooks", "Webhook")
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

        def make(org, name, minutes):
            webhook = OldWebhook.objects.create(
                organization_id=org.pk, name=name, url="https://a.test/", events=["*"], secret="x"
            )
            OldWebhook.objects.filter(pk=webhook.pk).update(created_at=base + dt.timedelta(minutes=minutes))
            return webhook.pk

        third = make(organization, "crm", 3)
        first = make(organization, "crm", 1)
        second = make(organization, "crm", 2)
        taken = make(organization, "crm (2)", 0)  # already used: the duplicates skip it
        elsewhere = make(other_organization, "crm", 5)  # another organization may use the name
        long_name = "x" * 200
        long_first, long_second = make(organization, long_name, 1), make(organization, long_name, 2)

        migrate_to(AFTER)
        names = dict(Webhook.objects.values_list("pk", "name"))
        assert names[first] == "crm" and names[taken] == "crm (2)"
        assert names[second] == "crm (3)" and names[third] == "crm (4)"
        assert names[elsewhere] == "crm"
        assert names[long_first] == long_name and names[long_second] == "x" * 196 + " (2)"

        with pytest.raises(IntegrityError), transaction.atomic():
            Webhook.objects.filter(pk=second).update(name="crm")
    finally:
        migrate_to(latest())
