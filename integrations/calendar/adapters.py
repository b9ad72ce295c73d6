"""One adapter per calendar provider: the provider's request and answer shapes, nothing
stored. Every call goes through the integration's client (integrations/client/scopes.py
`call`: permission refusals become `missing_scopes` issues).

- Google Calendar API v3: `POST freeBusy`; events with `conferenceDataVersion=1` (a Meet
  link from `conferenceData.createRequest`) and `sendUpdates=all`; `events/watch`
  channels, `channels/stop`; incremental sync with `syncToken` (410: start again).
- Microsoft Graph v1.0: `POST me/calendar/getSchedule` with `Prefer: outlook.timezone`;
  events with `isOnlineMeeting` / `onlineMeetingProvider: teamsForBusiness` and a
  `transactionId` (Graph's own duplicate guard); `POST events/{id}/cancel`;
  `subscriptions` (at most 4,230 minutes for events), renewed with PATCH.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from django.utils import timezone

from integrations.client import IntegrationClient, ProviderError
from integrations.client.scopes import call

from .freebusy import Interval, local, parse_instant, rfc3339, zone

#: normalized attendee responses
NEEDS_ACTION, ACCEPTED, DECLINED, TENTATIVE, ORGANIZER = (
    "needs_action",
    "accepted",
    "declined",
    "tentative",
    "organizer",
)


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str = ""
    optional: bool = False


@dataclass(frozen=True)
class InterviewSpec:
    """What the platform wants on the calendar for one interview."""

    interview_id: str
    title: str
    start: datetime
    end: datetime
    time_zone: str = "UTC"
    description: str = ""
    location: str = ""
    attendees: tuple[Attendee, ...] = ()
    online_meeting: bool = True


@dataclass
class ProviderEvent:
    id: str
    etag: str = ""
    cancelled: bool = False
    start: datetime | None = None
    end: datetime | None = None
    title: str = ""
    online_meeting_url: str = ""
    #: [{"email", "name", "optional", "response_status"}]
    attendees: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Channel:
    """A change subscription as the provider gave it."""

    channel_id: str
    resource_id: str
    expires_at: datetime | None


class SyncTokenExpired(Exception):
    """Google answered 410 to a sync token: list everything again."""


def _seg(value: str) -> str:
    return quote(value, safe="@")


class CalendarAdapter:
    scopes: ClassVar[tuple[str, ...]] = ()
    read_scopes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, client: IntegrationClient):
        self.client = client

    def _call(self, method: str, path: str, *, read: bool = False, **kwargs: Any) -> Any:
        return call(self.client, method, path, scopes=self.read_scopes if read else self.scopes, **kwargs)

    # What each provider implements (the services call only these, plus its notifications).
    def free_busy(
        self, emails: list[str], window: Interval, tz_name: str
    ) -> tuple[dict[str, list[Interval]], dict[str, str]]:
        raise NotImplementedError

    def create(self, calendar_id: str, spec: InterviewSpec) -> ProviderEvent:
        raise NotImplementedError

    def update(self, calendar_id: str, event_id: str, spec: InterviewSpec, *, has_meeting: bool) -> ProviderEvent:
        raise NotImplementedError

    def cancel(self, calendar_id: str, event_id: str) -> None:
        raise NotImplementedError

    def get(self, calendar_id: str, event_id: str) -> ProviderEvent:
        raise NotImplementedError


class GoogleCalendar(CalendarAdapter):
    scopes = ("https://www.googleapis.com/auth/calendar.events",)
    read_scopes = ("https://www.googleapis.com/auth/calendar.readonly",)
    #: Google keeps a channel at most this long by default (one week); we ask for it
    channel_ttl = timedelta(days=7)

    STATUSES: ClassVar[dict[str, str]] = {
        "needsAction": NEEDS_ACTION,
        "accepted": ACCEPTED,
        "declined": DECLINED,
        "tentative": TENTATIVE,
    }

    def free_busy(
        self, emails: list[str], window: Interval, tz_name: str
    ) -> tuple[dict[str, list[Interval]], dict[str, str]]:
        tz = zone(tz_name)
        body = {
            "timeMin": rfc3339(window.start, tz),
            "timeMax": rfc3339(window.end, tz),
            "timeZone": tz_name,
            "items": [{"id": email} for email in emails],
        }
        answer = self._call("POST", "freeBusy", json=body, read=True) or {}
        busy: dict[str, list[Interval]] = {}
        errors: dict[str, str] = {}
        calendars = answer.get("calendars") or {}
        for email in emails:
            entry = calendars.get(email) or {}
            if entry.get("errors"):
                errors[email] = ", ".join(str(e.get("reason", "error")) for e in entry["errors"])
            busy[email] = [
                Interval(parse_instant(b["start"], tz), parse_instant(b["end"], tz)) for b in entry.get("busy") or []
            ]
        return busy, errors

    def _body(self, spec: InterviewSpec, *, with_meeting: bool) -> dict[str, Any]:
        tz = zone(spec.time_zone)
        body: dict[str, Any] = {
            "summary": spec.title,
            "description": spec.description,
            "location": spec.location,
            "start": {"dateTime": rfc3339(spec.start, tz), "timeZone": spec.time_zone},
            "end": {"dateTime": rfc3339(spec.end, tz), "timeZone": spec.time_zone},
            "attendees": [
                {"email": a.email, **({"displayName": a.name} if a.name else {}), "optional": a.optional}
                for a in spec.attendees
            ],
            "extendedProperties": {"private": {"platform_interview_id": spec.interview_id}},
        }
        if with_meeting:
            body["conferenceData"] = {
                "createRequest": {
                    "requestId": _request_id(self.client, spec.interview_id),
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            }
        return body

    def create(self, calendar_id: str, spec: InterviewSpec) -> ProviderEvent:
        answer = self._call(
            "POST",
            f"calendars/{_seg(calendar_id)}/events",
            params={"conferenceDataVersion": 1, "sendUpdates": "all"},
            json=self._body(spec, with_meeting=spec.online_meeting),
        )
        return self.parse(answer)

    def update(self, calendar_id: str, event_id: str, spec: InterviewSpec, *, has_meeting: bool) -> ProviderEvent:
        body = self._body(spec, with_meeting=spec.online_meeting and not has_meeting)
        if not spec.online_meeting:
            body["conferenceData"] = None
        answer = self._call(
            "PATCH",
            f"calendars/{_seg(calendar_id)}/events/{_seg(event_id)}",
            params={"conferenceDataVersion": 1, "sendUpdates": "all"},
            json=body,
        )
        return self.parse(answer)

    def cancel(self, calendar_id: str, event_id: str) -> None:
        try:
            self._call(
                "DELETE", f"calendars/{_seg(calendar_id)}/events/{_seg(event_id)}", params={"sendUpdates": "all"}
            )
        except ProviderError as error:
            if error.status not in (404, 410):  # already deleted there: the cancel holds
                raise

    def get(self, calendar_id: str, event_id: str) -> ProviderEvent:
        return self.parse(self._call("GET", f"calendars/{_seg(calendar_id)}/events/{_seg(event_id)}", read=True))

    def parse(self, event: dict[str, Any]) -> ProviderEvent:
        meeting = event.get("hangoutLink") or ""
        for entry in (event.get("conferenceData") or {}).get("entryPoints") or []:
            if entry.get("entryPointType") == "video" and entry.get("uri"):
                meeting = entry["uri"]
        start, end = event.get("start") or {}, event.get("end") or {}
        utc = zone("UTC")
        return ProviderEvent(
            id=event.get("id", ""),
            etag=event.get("etag", ""),
            cancelled=event.get("status") == "cancelled",
            start=parse_instant(start["dateTime"], utc) if start.get("dateTime") else None,
            end=parse_instant(end["dateTime"], utc) if end.get("dateTime") else None,
            title=event.get("summary", ""),
            online_meeting_url=meeting,
            attendees=[
                {
                    "email": a.get("email", ""),
                    "name": a.get("displayName", ""),
                    "optional": bool(a.get("optional")),
                    "response_status": ORGANIZER
                    if a.get("organizer") and a.get("self")
                    else self.STATUSES.get(a.get("responseStatus", ""), NEEDS_ACTION),
                }
                for a in event.get("attendees") or []
            ],
        )

    # --- change notifications -----------------------------------------------------------

    def watch(self, calendar_id: str, *, channel_id: str, token: str, address: str) -> Channel:
        answer = self._call(
            "POST",
            f"calendars/{_seg(calendar_id)}/events/watch",
            json={
                "id": channel_id,
                "type": "web_hook",
                "address": address,
                "token": token,
                "params": {"ttl": str(int(self.channel_ttl.total_seconds()))},
            },
            read=True,
        )
        expiration = answer.get("expiration")
        expires = datetime.fromtimestamp(int(expiration) / 1000, tz=UTC) if str(expiration or "").isdigit() else None
        return Channel(
            channel_id=answer.get("id", channel_id), resource_id=answer.get("resourceId", ""), expires_at=expires
        )

    def stop(self, *, channel_id: str, resource_id: str) -> None:
        try:
            self._call("POST", "channels/stop", json={"id": channel_id, "resourceId": resource_id}, read=True)
        except ProviderError as error:
            if error.status != 404:  # already gone
                raise

    def changes(self, calendar_id: str, sync_token: str) -> tuple[list[ProviderEvent], str]:
        """Events changed since `sync_token` ("" lists them all), and the next token.
        SyncTokenExpired on Google's 410 (the token is no longer valid)."""
        params: dict[str, Any] = {"maxResults": 250, "showDeleted": "true"}
        if sync_token:
            params["syncToken"] = sync_token
        events: list[ProviderEvent] = []
        while True:
            try:
                page = self._call("GET", f"calendars/{_seg(calendar_id)}/events", params=params, read=True) or {}
            except ProviderError as error:
                if error.status == 410 and sync_token:
                    raise SyncTokenExpired from None
                raise
            events += [self.parse(item) for item in page.get("items") or []]
            if page.get("nextPageToken"):
                params["pageToken"] = page["nextPageToken"]
                continue
            return events, page.get("nextSyncToken", "")


class OutlookCalendar(CalendarAdapter):
    scopes = ("Calendars.ReadWrite",)
    read_scopes = ("Calendars.Read",)
    #: the longest a Graph subscription on events may last
    max_subscription = timedelta(minutes=4230)
    busy_statuses = frozenset({"busy", "tentative", "oof"})

    STATUSES: ClassVar[dict[str, str]] = {
        "none": NEEDS_ACTION,
        "notResponded": NEEDS_ACTION,
        "accepted": ACCEPTED,
        "declined": DECLINED,
        "tentativelyAccepted": TENTATIVE,
        "organizer": ORGANIZER,
    }

    def _events(self, calendar_id: str) -> str:
        return "me/events" if calendar_id == "primary" else f"me/calendars/{_seg(calendar_id)}/events"

    def free_busy(
        self, emails: list[str], window: Interval, tz_name: str
    ) -> tuple[dict[str, list[Interval]], dict[str, str]]:
        tz = zone(tz_name)
        answer = self._call(
            "POST",
            "me/calendar/getSchedule",
            json={
                "schedules": emails,
                "startTime": {"dateTime": local(window.start, tz), "timeZone": tz_name},
                "endTime": {"dateTime": local(window.end, tz), "timeZone": tz_name},
                "availabilityViewInterval": 15,
            },
            headers={"Prefer": f'outlook.timezone="{tz_name}"'},
            read=True,
        )
        busy: dict[str, list[Interval]] = {email: [] for email in emails}
        errors: dict[str, str] = {}
        for schedule in (answer or {}).get("value") or []:
            email = next((e for e in emails if e.casefold() == str(schedule.get("scheduleId", "")).casefold()), None)
            if email is None:
                continue
            if schedule.get("error"):
                errors[email] = str(
                    schedule["error"].get("responseCode") or schedule["error"].get("message") or "error"
                )
            for item in schedule.get("scheduleItems") or []:
                if item.get("status") not in self.busy_statuses:
                    continue
                busy[email].append(Interval(self._instant(item["start"], tz), self._instant(item["end"], tz)))
        return busy, errors

    @staticmethod
    def _instant(value: dict[str, Any], default: Any) -> datetime:
        try:
            tz = zone(value.get("timeZone") or "")
        except ValueError:
            tz = default  # a Windows zone name, or none: the zone asked for in Prefer
        return parse_instant(value["dateTime"], tz)

    def _body(self, spec: InterviewSpec) -> dict[str, Any]:
        tz = zone(spec.time_zone)
        body: dict[str, Any] = {
            "subject": spec.title,
            "body": {"contentType": "text", "content": spec.description},
            "start": {"dateTime": local(spec.start, tz), "timeZone": spec.time_zone},
            "end": {"dateTime": local(spec.end, tz), "timeZone": spec.time_zone},
            "location": {"displayName": spec.location},
            "attendees": [
                {
                    "emailAddress": {"address": a.email, **({"name": a.name} if a.name else {})},
                    "type": "optional" if a.optional else "required",
                }
                for a in spec.attendees
            ],
            "isOnlineMeeting": spec.online_meeting,
        }
        if spec.online_meeting:
            body["onlineMeetingProvider"] = "teamsForBusiness"
        return body

    def create(self, calendar_id: str, spec: InterviewSpec) -> ProviderEvent:
        body = {**self._body(spec), "transactionId": _request_id(self.client, spec.interview_id)}
        return self.parse(self._call("POST", self._events(calendar_id), json=body))

    def update(self, calendar_id: str, event_id: str, spec: InterviewSpec, *, has_meeting: bool) -> ProviderEvent:
        return self.parse(self._call("PATCH", f"me/events/{_seg(event_id)}", json=self._body(spec)))

    def cancel(self, calendar_id: str, event_id: str) -> None:
        try:
            self._call("POST", f"me/events/{_seg(event_id)}/cancel", json={"comment": "This interview was cancelled."})
        except ProviderError as error:
            if error.status != 404:  # already deleted there: the cancel holds
                raise

    def get(self, calendar_id: str, event_id: str) -> ProviderEvent:
        return self.parse(self._call("GET", f"me/events/{_seg(event_id)}", read=True))

    def parse(self, event: dict[str, Any]) -> ProviderEvent:
        def instant(value: dict[str, Any] | None) -> datetime | None:
            return self._instant(value, zone("UTC")) if value and value.get("dateTime") else None

        return ProviderEvent(
            id=event.get("id", ""),
            etag=event.get("@odata.etag") or event.get("changeKey", ""),
            cancelled=bool(event.get("isCancelled")),
            start=instant(event.get("start")),
            end=instant(event.get("end")),
            title=event.get("subject", ""),
            online_meeting_url=((event.get("onlineMeeting") or {}).get("joinUrl") or ""),
            attendees=[
                {
                    "email": (a.get("emailAddress") or {}).get("address", ""),
                    "name": (a.get("emailAddress") or {}).get("name", ""),
                    "optional": a.get("type") == "optional",
                    "response_status": self.STATUSES.get((a.get("status") or {}).get("response", ""), NEEDS_ACTION),
                }
                for a in event.get("attendees") or []
            ],
        )

    # --- change notifications -----------------------------------------------------------

    def subscribe(self, calendar_id: str, *, client_state: str, address: str) -> Channel:
        expires = timezone.now() + self.max_subscription - timedelta(minutes=5)
        answer = self._call(
            "POST",
            "subscriptions",
            json={
                "changeType": "updated,deleted",
                "notificationUrl": address,
                "resource": self._events(calendar_id),
                "expirationDateTime": _graph_time(expires),
                "clientState": client_state,
            },
            read=True,
        )
        return Channel(channel_id=answer["id"], resource_id=answer.get("resource", ""), expires_at=self._expiry(answer))

    def renew(self, subscription_id: str) -> datetime | None:
        expires = timezone.now() + self.max_subscription - timedelta(minutes=5)
        answer = self._call(
            "PATCH",
            f"subscriptions/{_seg(subscription_id)}",
            json={"expirationDateTime": _graph_time(expires)},
            read=True,
        )
        return self._expiry(answer or {}) or expires

    def unsubscribe(self, subscription_id: str) -> None:
        try:
            self._call("DELETE", f"subscriptions/{_seg(subscription_id)}", read=True)
        except ProviderError as error:
            if error.status != 404:
                raise

    @staticmethod
    def _expiry(answer: dict[str, Any]) -> datetime | None:
        value = answer.get("expirationDateTime")
        return parse_instant(value, zone("UTC")) if isinstance(value, str) else None


def _graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _request_id(client: IntegrationClient, interview_id: str) -> str:
    """The same id for the same interview on the same integration: a retried create is
    recognised by the provider (Graph `transactionId`, Google's conference `requestId`)."""
    return hashlib.sha256(f"{client.integration.pk}:{interview_id}".encode()).hexdigest()[:40]


ADAPTERS: dict[str, type[CalendarAdapter]] = {"google_calendar": GoogleCalendar, "microsoft_outlook": OutlookCalendar}
CALENDAR_PROVIDERS = tuple(ADAPTERS)
