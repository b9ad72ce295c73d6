"""Retention per event type: `prune_webhook_logs` keeps each type for its own days."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from webhooks import events as catalogue
from webhooks import tasks
from webhooks.models import Delivery, Event, WebhookLog
from webhooks.services import event_type_create, logs_prune, trigger_event, webhook_create

pytestmark = pytest.mark.django_db


def _age_all(days: int) -> None:
    then = timezone.now() - timedelta(days=days)
    Event.objects.update(created_at=then)
    Delivery.objects.update(finished_at=then)
    WebhookLog.objects.update(created_at=then)


def test_each_type_is_pruned_after_its_own_retention(organization, other_organization, receiver, monkeypatch):
    monkeypatch.setattr(catalogue, "_catalogue", dict(catalogue._catalogue))
    catalogue.register_event("integration.chatty", "kept 2 days", retention_days=2)
    event_type_create(organization=organization, name="custom.short", schema={"type": "object"}, retention_days=1)
    # The same name in another organization sets no retention: the default applies there.
    event_type_create(organization=other_organization, name="custom.short", schema={"type": "object"})
    event_type_create(organization=organization, name="custom.long", schema={"type": "object"}, retention_days=90)
    for org in (organization, other_organization):
        webhook_create(organization=org, name="all", url=receiver.url, events=["*"], retry_attempts=0)
    for name in ("integration.chatty", "custom.short", "custom.long", "application.created"):
        trigger_event(organization=organization, event=name, payload={})
    trigger_event(organization=other_organization, event="custom.short", payload={})
    tasks.deliver_due()
    assert WebhookLog.objects.count() == 5

    _age_all(days=3)  # past custom.short (1) and integration.chatty (2); within 30 and 90
    dry = logs_prune(dry_run=True)
    assert (dry.logs, dry.deliveries, dry.events) == (2, 2, 2)
    out = StringIO()
    call_command("prune_webhook_logs", stdout=out)
    left = set(Event.objects.values_list("organization__slug", "type"))
    assert left == {("acme", "custom.long"), ("acme", "application.created"), ("globex", "custom.short")}
    assert set(WebhookLog.objects.values_list("event_type", flat=True)) == {
        "custom.long",
        "application.created",
        "custom.short",
    }

    _age_all(days=40)  # past the default 30, within custom.long's 90
    logs_prune()
    assert set(Event.objects.values_list("type", flat=True)) == {"custom.long"}
    assert WebhookLog.objects.get().event_type == "custom.long"
    _age_all(days=91)
    logs_prune()
    assert not Event.objects.exists() and not WebhookLog.objects.exists() and not Delivery.objects.exists()


def test_retention_days_shows_in_the_catalogue_and_is_validated(api_client):
    response = api_client.post(
        "/api/integrations/webhooks/event-types/",
        {"name": "custom.kept", "schema": {"type": "object"}, "retention_days": 7},
        format="json",
    )
    assert response.status_code == 201 and response.json()["retention_days"] == 7
    entries = {e["event"]: e for e in api_client.get("/api/integrations/webhooks/events/").json()}
    assert entries["custom.kept"]["retention_days"] == 7 and entries["application.created"]["retention_days"] is None
    response = api_client.patch(
        "/api/integrations/webhooks/event-types/custom.kept/", {"retention_days": 0}, format="json"
    )
    assert response.status_code == 400
