"""Interviews on calendars: free/busy, interview events kept idempotent by the platform's
interview id, change subscriptions and what their notifications mean (docs/HIRING.md).

Idempotency: `interview_event_upsert` takes the mapping row (integration, interview_id;
unique) and holds its lock while it talks to the provider, so two creates at once make
one provider event: the second waits, then finds the event id and updates it. The
provider call runs inside that transaction on purpose; a failed call rolls the new row
back, so nothing is stored for an event that does not exist.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from common.exceptions import ApplicationError
from integrations.client import integration_client
from integrations.client.scopes import reported_after
from integrations.models import CalendarSubscription, Integration, InterviewEvent

from .adapters import (
    ADAPTERS,
    CalendarAdapter,
    GoogleCalendar,
    InterviewSpec,
    OutlookCalendar,
    ProviderEvent,
    SyncTokenExpired,
)
from .freebusy import Interval, common_free, merge, rfc3339, zone

logger = logging.getLogger(__name__)

EVENT_RSVP_CHANGED = "interview.rsvp_changed"
EVENT_UPDATED_EXTERNALLY = "interview.updated_externally"
#: subscriptions expiring sooner than this are renewed by the schedule (it runs hourly)
RENEW_BEFORE = timedelta(hours=12)
MAX_FREE_BUSY_EMAILS = 50
MAX_FREE_BUSY_WINDOW = timedelta(days=62)


class NotACalendar(ApplicationError):
    pass


class InterviewNotFound(ApplicationError):
    """An interview id unknown on this integration: the same 404 as any other."""

    status_code = 404

    def __init__(self) -> None:
        super().__init__("Not found.")


def calendar_adapter(integration: Integration) -> CalendarAdapter:
    adapter = ADAPTERS.get(integration.provider)
    if adapter is None:
        raise NotACalendar(
            f"Integration {integration.pk} is a {integration.provider} integration, not a calendar provider "
            f"({', '.join(ADAPTERS)})."
        )
    if integration.status != Integration.Status.ACTIVE:
        raise NotACalendar(f"Integration {integration.pk} is not connected (status {integration.status}).")
    return adapter(integration_client(integration))


# --- free/busy ------------------------------------------------------------------------


def calendar_free_busy(
    *, integration: Integration, emails: list[str], start: datetime, end: datetime, time_zone: str, min_minutes: int = 0
) -> dict[str, Any]:
    """Each person's busy intervals (merged) and the slots free for all, in `time_zone`."""
    adapter = calendar_adapter(integration)
    tz = zone(time_zone)
    window = Interval(start, end)
    busy, errors = adapter.free_busy(emails, window, time_zone)
    merged = {email: merge(busy.get(email, []), window=window) for email in emails}
    free = common_free(merged.values(), window, min_minutes=min_minutes)

    def out(intervals: list[Interval]) -> list[dict[str, str]]:
        return [{"start": rfc3339(i.start, tz), "end": rfc3339(i.end, tz)} for i in intervals]

    return {
        "time_zone": time_zone,
        "start": rfc3339(start, tz),
        "end": rfc3339(end, tz),
        "busy": {email: out(merged[email]) for email in emails},
        "free": out(free),
        "errors": errors,
    }


# --- interview events ---------------------------------------------------------------


def _apply(row: InterviewEvent, event: ProviderEvent, *, fields: list[str]) -> None:
    """Copy what the provider says of its event onto the row (the fields named)."""
    row.provider_event_id = event.id or row.provider_event_id
    row.etag = event.etag
    if event.start is not None:
        row.start_at = event.start
    if event.end is not None:
        row.end_at = event.end
    row.title = event.title or row.title
    row.online_meeting_url = event.online_meeting_url or row.online_meeting_url
    row.attendees = event.attendees
    row.synced_at = timezone.now()
    fields += [
        "provider_event_id",
        "etag",
        "start_at",
        "end_at",
        "title",
        "online_meeting_url",
        "attendees",
        "synced_at",
    ]


def interview_event_upsert(
    *, integration: Integration, spec: InterviewSpec, calendar_id: str = "primary"
) -> tuple[InterviewEvent, bool]:
    """Create the interview's event, or update it when the interview id is known (a
    cancelled one is scheduled again as a new event). Returns (row, created)."""
    adapter = calendar_adapter(integration)
    with reported_after(), transaction.atomic():
        row, _ = _lock_row(integration, spec.interview_id, calendar_id)
        created = not row.provider_event_id or row.state == InterviewEvent.State.CANCELLED
        if created:
            row.calendar_id = calendar_id
            event = adapter.create(calendar_id, spec)
        else:
            event = adapter.update(
                row.calendar_id, row.provider_event_id, spec, has_meeting=bool(row.online_meeting_url)
            )
        fields = ["calendar_id", "state", "cancelled_at", "time_zone", "updated_at"]
        row.state = InterviewEvent.State.SCHEDULED
        row.cancelled_at = None
        row.time_zone = spec.time_zone
        row.start_at, row.end_at, row.title = spec.start, spec.end, spec.title
        _apply(row, event, fields=fields)
        row.save(update_fields=fields)
        transaction.on_commit(lambda: _enqueue_ensure_subscription(integration.pk, row.calendar_id))
    return row, created


def _lock_row(integration: Integration, interview_id: str, calendar_id: str) -> tuple[InterviewEvent, bool]:
    """The mapping row, created if new, locked for this transaction."""
    try:
        with transaction.atomic():
            _, created = InterviewEvent.objects.get_or_create(
                integration=integration,
                interview_id=interview_id,
                defaults={"organization_id": integration.organization_id, "calendar_id": calendar_id},
            )
    except IntegrityError:  # another request created it between our read and insert
        created = False
    return InterviewEvent.objects.select_for_update().get(integration=integration, interview_id=interview_id), created


def interview_event_cancel(*, integration: Integration, interview_id: str) -> InterviewEvent:
    """Cancel the interview's event; a cancelled one stays as it is (no provider call)."""
    if not InterviewEvent.objects.filter(integration=integration, interview_id=interview_id).exists():
        raise InterviewNotFound()
    adapter = calendar_adapter(integration)
    with reported_after(), transaction.atomic():
        row = InterviewEvent.objects.select_for_update().get(integration=integration, interview_id=interview_id)
        if row.state == InterviewEvent.State.CANCELLED:
            return row
        if row.provider_event_id:
            adapter.cancel(row.calendar_id, row.provider_event_id)
        row.state = InterviewEvent.State.CANCELLED
        row.cancelled_at = timezone.now()
        row.save(update_fields=["state", "cancelled_at", "updated_at"])
    return row


def interview_event_get(*, integration: Integration, interview_id: str, refresh: bool = True) -> InterviewEvent:
    """The interview's event with its attendees' responses, read again from the provider
    (a calendar provider's; otherwise, and once cancelled, as stored)."""
    row = InterviewEvent.objects.filter(integration=integration, interview_id=interview_id).first()
    if row is None:
        raise InterviewNotFound()
    readable = integration.provider in ADAPTERS and row.provider_event_id
    if refresh and readable and row.state == InterviewEvent.State.SCHEDULED:
        event = calendar_adapter(integration).get(row.calendar_id, row.provider_event_id)
        _record_changes(row, event)
    return row


# --- change subscriptions -------------------------------------------------------------


def notification_url(provider: str) -> str:
    name = "calendar-notifications-google" if provider == "google_calendar" else "calendar-notifications-microsoft"
    return settings.PUBLIC_BASE_URL + reverse(name).rstrip("/") + "/"


def _enqueue_ensure_subscription(integration_id: Any, calendar_id: str) -> None:
    if CalendarSubscription.objects.filter(
        integration_id=integration_id, calendar_id=calendar_id, state=CalendarSubscription.State.ACTIVE
    ).exists():
        return
    from django_q.tasks import async_task

    async_task("integrations.calendar.tasks.ensure_subscription", str(integration_id), calendar_id)


def calendar_subscription_ensure(*, integration: Integration, calendar_id: str) -> CalendarSubscription:
    """An active change subscription on the calendar (created, or created again after it failed)."""
    adapter = calendar_adapter(integration)
    with reported_after(), transaction.atomic():
        try:
            with transaction.atomic():
                subscription, _ = CalendarSubscription.objects.get_or_create(
                    integration=integration,
                    calendar_id=calendar_id,
                    defaults={
                        "organization_id": integration.organization_id,
                        "state": CalendarSubscription.State.FAILED,
                    },
                )
        except IntegrityError:
            pass
        subscription = CalendarSubscription.objects.select_for_update().get(
            integration=integration, calendar_id=calendar_id
        )
        if subscription.state == CalendarSubscription.State.ACTIVE and subscription.channel_id:
            return subscription
        _subscribe(adapter, subscription)
    return subscription


def _subscribe(adapter: CalendarAdapter, subscription: CalendarSubscription) -> None:
    """A new channel or subscription on the row's calendar (the row is locked by the caller)."""
    secret = secrets.token_urlsafe(32)
    address = notification_url(adapter.client.integration.provider)
    if isinstance(adapter, GoogleCalendar):
        channel = adapter.watch(subscription.calendar_id, channel_id=str(uuid.uuid4()), token=secret, address=address)
        _, subscription.sync_token = adapter.changes(subscription.calendar_id, "")
    else:
        assert isinstance(adapter, OutlookCalendar)
        channel = adapter.subscribe(subscription.calendar_id, client_state=secret, address=address)
    subscription.channel_id = channel.channel_id
    subscription.resource_id = channel.resource_id
    subscription.expires_at = channel.expires_at
    subscription.client_state = secret  # type: ignore[assignment]
    subscription.state = CalendarSubscription.State.ACTIVE
    subscription.last_error = ""
    subscription.renewed_at = timezone.now()
    subscription.save(
        update_fields=[
            "channel_id",
            "resource_id",
            "expires_at",
            "client_state",
            "state",
            "last_error",
            "renewed_at",
            "sync_token",
            "updated_at",
        ]
    )


def calendar_subscription_renew(*, subscription_id: Any) -> CalendarSubscription:
    """Extend one subscription: Graph PATCHes its expirationDateTime (a 404: subscribe
    again); Google cannot extend a channel, so a new one replaces it and the old is stopped."""
    with transaction.atomic():
        subscription = (
            CalendarSubscription.objects.select_for_update().select_related("integration").get(pk=subscription_id)
        )
        adapter = calendar_adapter(subscription.integration)
        old_channel, old_resource = subscription.channel_id, subscription.resource_id
        if isinstance(adapter, OutlookCalendar):
            from integrations.client import ProviderError

            try:
                subscription.expires_at = adapter.renew(subscription.channel_id)
            except ProviderError as error:
                if error.status != 404:
                    raise
                _subscribe(adapter, subscription)
                return subscription
            subscription.renewed_at = timezone.now()
            subscription.save(update_fields=["expires_at", "renewed_at", "updated_at"])
            return subscription
        assert isinstance(adapter, GoogleCalendar)
        token = subscription.sync_token
        _subscribe(adapter, subscription)
        if token:  # keep reading changes from where we were: nothing in between is missed
            subscription.sync_token = token
            subscription.save(update_fields=["sync_token"])
        if old_channel:
            adapter.stop(channel_id=old_channel, resource_id=old_resource)
    return subscription


def calendar_subscriptions_renew_due(*, now: datetime | None = None) -> dict[str, int]:
    """Renew every active subscription expiring within RENEW_BEFORE (the schedule)."""
    now = now or timezone.now()
    due = CalendarSubscription.objects.filter(
        state=CalendarSubscription.State.ACTIVE, expires_at__lt=now + RENEW_BEFORE
    ).values_list("pk", flat=True)
    renewed = failed = 0
    for pk in list(due):
        try:
            calendar_subscription_renew(subscription_id=pk)
            renewed += 1
        except ApplicationError as error:
            failed += 1
            CalendarSubscription.objects.filter(pk=pk).update(
                state=CalendarSubscription.State.FAILED, last_error=error.message[:1000], updated_at=timezone.now()
            )
            logger.warning("Calendar subscription %s not renewed: %s", pk, error.message)
    return {"renewed": renewed, "failed": failed}


# --- what changed ---------------------------------------------------------------------


def calendar_changes_process(*, subscription_id: Any, event_ids: list[str] | None = None) -> int:
    """Read what changed on the subscription's calendar and turn changes to interviews
    into platform events. Google: the changes since the sync token (a 410 lists the whole
    calendar again); Graph: the events the notification named. Returns events raised."""
    subscription = CalendarSubscription.objects.select_related("integration").get(pk=subscription_id)
    integration = subscription.integration
    adapter = calendar_adapter(integration)
    changed: list[ProviderEvent] = []
    missing: list[str] = []
    if isinstance(adapter, GoogleCalendar):
        try:
            changed, token = adapter.changes(subscription.calendar_id, subscription.sync_token)
        except SyncTokenExpired:
            logger.info("Sync token of subscription %s expired: full resync", subscription.pk)
            changed, token = adapter.changes(subscription.calendar_id, "")
        CalendarSubscription.objects.filter(pk=subscription.pk).update(sync_token=token, updated_at=timezone.now())
    else:
        from integrations.client import ProviderError

        for event_id in event_ids or []:
            try:
                changed.append(adapter.get(subscription.calendar_id, event_id))
            except ProviderError as error:
                if error.status != 404:
                    raise
                missing.append(event_id)  # deleted at the provider
    rows = {
        row.provider_event_id: row
        for row in InterviewEvent.objects.filter(
            integration=integration,
            provider_event_id__in=[e.id for e in changed] + missing,
            state=InterviewEvent.State.SCHEDULED,
        )
    }
    raised = 0
    for event in changed:
        if event.id in rows:
            raised += _record_changes(rows[event.id], event)
    for event_id in missing:
        if event_id in rows:
            raised += _record_changes(rows[event_id], ProviderEvent(id=event_id, cancelled=True))
    return raised


def _payload(row: InterviewEvent) -> dict[str, Any]:
    return {
        "interview_id": row.interview_id,
        "integration_id": str(row.integration_id),
        "provider": row.integration.provider,
        "provider_event_id": row.provider_event_id,
    }


def _record_changes(row: InterviewEvent, event: ProviderEvent) -> int:
    """Compare the provider's event with the row, store it, raise an event per change."""
    from webhooks.services import trigger_event

    raised = 0
    with transaction.atomic():
        locked = InterviewEvent.objects.select_for_update().select_related("integration", "organization").get(pk=row.pk)
        if locked.state == InterviewEvent.State.CANCELLED:
            return 0
        before = {a["email"].casefold(): a.get("response_status") for a in locked.attendees}
        previous_start, previous_end = locked.start_at, locked.end_at
        fields: list[str] = ["updated_at"]
        if event.cancelled:
            locked.state = InterviewEvent.State.CANCELLED
            locked.cancelled_at = timezone.now()
            locked.synced_at = timezone.now()
            fields += ["state", "cancelled_at", "synced_at"]
            trigger_event(
                organization=locked.organization,
                event=EVENT_UPDATED_EXTERNALLY,
                payload={**_payload(locked), "change": "cancelled"},
            )
            raised += 1
        else:
            _apply(locked, event, fields=fields)
            moved = (event.start and event.start != previous_start) or (event.end and event.end != previous_end)
            if moved:
                trigger_event(
                    organization=locked.organization,
                    event=EVENT_UPDATED_EXTERNALLY,
                    payload={
                        **_payload(locked),
                        "change": "moved",
                        "start": _iso(event.start),
                        "end": _iso(event.end),
                        "previous_start": _iso(previous_start),
                        "previous_end": _iso(previous_end),
                    },
                )
                raised += 1
            for attendee in event.attendees:
                previous = before.get(attendee["email"].casefold())
                if previous is not None and previous != attendee["response_status"]:
                    trigger_event(
                        organization=locked.organization,
                        event=EVENT_RSVP_CHANGED,
                        payload={
                            **_payload(locked),
                            "attendee": {"email": attendee["email"], "name": attendee.get("name", "")},
                            "response_status": attendee["response_status"],
                            "previous_response_status": previous,
                        },
                    )
                    raised += 1
        locked.save(update_fields=sorted(set(fields)))
    row.__dict__.update(
        {f: getattr(locked, f) for f in ("state", "attendees", "start_at", "end_at", "etag", "synced_at")}
    )
    return raised


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


__all__ = [
    "EVENT_RSVP_CHANGED",
    "EVENT_UPDATED_EXTERNALLY",
    "InterviewSpec",
    "calendar_changes_process",
    "calendar_free_busy",
    "calendar_subscription_ensure",
    "calendar_subscription_renew",
    "calendar_subscriptions_renew_due",
    "interview_event_cancel",
    "interview_event_get",
    "interview_event_upsert",
]
