"""What the platform keeps about interviews on calendars (imported by integrations/models.py).

- `InterviewEvent`: the platform's interview id mapped to the provider's event, per
  integration (unique), with what was last seen of it (times, attendees' responses, etag),
  so a change notification can say what changed.
- `CalendarSubscription`: a Google watch channel or a Microsoft Graph subscription on a
  calendar holding interviews; its secret (`client_state`: the channel token or Graph
  `clientState`) is encrypted and never shown.
"""

from __future__ import annotations

import uuid

from django.db import models

from common.fields import EncryptedCharField
from organizations.models import Organization


class InterviewEvent(models.Model):
    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="interview_events")
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="interview_events"
    )
    interview_id = models.CharField(max_length=200, help_text="The platform's interview id.")
    calendar_id = models.CharField(max_length=500, default="primary")
    provider_event_id = models.CharField(max_length=500, blank=True, default="")
    etag = models.CharField(max_length=200, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.SCHEDULED)
    title = models.CharField(max_length=500, blank=True, default="")
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    #: [{"email", "name", "optional", "response_status"}], as last read from the provider
    attendees = models.JSONField(default=list, blank=True)
    online_meeting_url = models.CharField(max_length=1000, blank=True, default="")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True, help_text="When the provider's event was last read.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "interview_id"], name="interview_event_unique_interview"),
        ]
        indexes = [models.Index(fields=["integration", "provider_event_id"], name="interview_event_provider_id")]

    def __str__(self) -> str:
        return f"interview {self.interview_id} ({self.state})"


class CalendarSubscription(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="calendar_subscriptions")
    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="calendar_subscriptions"
    )
    calendar_id = models.CharField(max_length=500, default="primary")
    #: Google: the channel id we chose; Graph: the subscription id it gave
    channel_id = models.CharField(max_length=200, blank=True, default="", db_index=True)
    #: Google: the watched resource's id (needed to stop the channel)
    resource_id = models.CharField(max_length=500, blank=True, default="")
    client_state = EncryptedCharField(max_length=200, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    #: Google's nextSyncToken: the changes since the last look
    sync_token = models.TextField(blank=True, default="")
    last_error = models.CharField(max_length=1000, blank=True, default="")
    last_notification_at = models.DateTimeField(null=True, blank=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "calendar_id"], name="calendar_subscription_unique"),
        ]
        indexes = [models.Index(fields=["state", "expires_at"], name="calendar_subscription_expiry")]

    def __str__(self) -> str:
        return f"subscription on {self.calendar_id} ({self.state})"
