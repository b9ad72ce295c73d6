"""The change page of a calendar integration shows what it holds, read-only: its change
subscriptions (state, expiry; never their secret) and its interview events (the newest
`SHOWN` of them). One query per panel, whatever the number of rows."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from integrations.calendar.adapters import CALENDAR_PROVIDERS
from integrations.models import CalendarSubscription, Integration, InterviewEvent

SHOWN = 50
_TABLE = '<table style="width:auto"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'


def _table(headings: list[str], rows: list[tuple]) -> SafeString:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headings))
    body = format_html_join("", "<tr>" + "<td>{}</td>" * len(headings) + "</tr>", rows)
    return format_html(_TABLE, head, body)


class CalendarAdminMixin:
    calendar_fields = ("calendar_subscriptions_panel", "interview_events_panel")

    def calendar_fieldsets(self, obj: Integration | None) -> list:
        if obj is None or obj.provider not in CALENDAR_PROVIDERS:
            return []
        return [("Calendar", {"fields": list(self.calendar_fields)})]

    @admin.display(description="Change subscriptions")
    def calendar_subscriptions_panel(self, obj: Integration):
        rows = [
            (
                s.calendar_id,
                s.get_state_display(),
                s.expires_at or "—",
                s.renewed_at or "—",
                s.last_notification_at or "—",
                s.last_error or "",
            )
            for s in CalendarSubscription.objects.filter(integration=obj)
            .only("calendar_id", "state", "expires_at", "renewed_at", "last_notification_at", "last_error")
            .order_by("calendar_id")
        ]
        if not rows:
            return "None yet (created when an interview is put on a calendar)."
        return _table(["Calendar", "State", "Expires", "Renewed", "Last notification", "Last error"], rows)

    @admin.display(description="Interview events")
    def interview_events_panel(self, obj: Integration):
        events = list(
            InterviewEvent.objects.filter(integration=obj)
            .only("interview_id", "title", "state", "start_at", "calendar_id", "provider_event_id", "attendees")
            .order_by("-start_at", "-created_at")[:SHOWN]
        )
        if not events:
            return "None."
        rows = [
            (
                e.interview_id,
                e.title,
                e.get_state_display(),
                e.start_at or "—",
                e.calendar_id,
                ", ".join(f"{a.get('email')}: {a.get('response_status')}" for a in e.attendees) or "—",
            )
            for e in events
        ]
        return _table(["Interview", "Title", "State", "Starts", "Calendar", "Responses"], rows)
