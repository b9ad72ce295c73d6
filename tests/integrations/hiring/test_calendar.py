"""Calendars: free/busy merged per person with common free slots, interview events created,
updated and cancelled idempotently by interview id, attendees' responses read back, and
permission refusals turned into `missing_scopes` issues. Provider HTTP is `responses` with
the shapes Google Calendar v3 and Microsoft Graph document."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

import pytest
import responses
from responses import matchers

from integrations.calendar.freebusy import Interval, common_free, merge
from integrations.models import ConnectionIssue, InterviewEvent
from tests.api_errors import error_detail, field_errors, problem
from tests.concurrency import Concurrently
from tests.integrations.client.conftest import api_key

from .conftest import GOOGLE, GRAPH, TOKEN, body_of, oauth

pytestmark = pytest.mark.django_db


def url(integration, rest: str) -> str:
    return f"/api/integrations/{integration.pk}/calendar/{rest}"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


INTERVIEW = {
    "title": "Interview: Sam Lee",
    "description": "Technical interview",
    "location": "Online",
    "start": "2026-03-02T15:00:00+01:00",
    "end": "2026-03-02T16:00:00+01:00",
    "time_zone": "Europe/Paris",
    "attendees": [{"email": "ana@example.com"}, {"email": "sam@example.org", "name": "Sam Lee", "optional": True}],
    "online_meeting": True,
}


def google_event(event_id="evt1", *, etag='"1"', start="2026-03-02T14:00:00Z", end="2026-03-02T15:00:00Z", **extra):
    return {
        "kind": "calendar#event",
        "id": event_id,
        "etag": etag,
        "status": "confirmed",
        "summary": "Interview: Sam Lee",
        "start": {"dateTime": start, "timeZone": "Europe/Paris"},
        "end": {"dateTime": end, "timeZone": "Europe/Paris"},
        "hangoutLink": "https://meet.google.com/abc-defg-hij",
        "conferenceData": {
            "entryPoints": [{"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"}],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}},
        },
        "attendees": extra.pop(
            "attendees",
            [
                {"email": "ana@example.com", "responseStatus": "needsAction"},
                {
                    "email": "sam@example.org",
                    "displayName": "Sam Lee",
                    "optional": True,
                    "responseStatus": "needsAction",
                },
            ],
        ),
        **extra,
    }


def graph_event(event_id="AAMkAD1", *, response="none", is_cancelled=False):
    return {
        "id": event_id,
        "@odata.etag": 'W/"DwAAABYAAAA"',
        "subject": "Interview: Sam Lee",
        "isCancelled": is_cancelled,
        "start": {"dateTime": "2026-03-02T15:00:00.0000000", "timeZone": "Europe/Paris"},
        "end": {"dateTime": "2026-03-02T16:00:00.0000000", "timeZone": "Europe/Paris"},
        "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting"},
        "attendees": [
            {
                "type": "required",
                "status": {"response": response, "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": "Ana", "address": "ana@example.com"},
            },
        ],
    }


# --- free/busy ------------------------------------------------------------------------


def test_merge_joins_overlapping_and_touching_intervals_within_the_window():
    window = Interval(at(9), at(18))
    merged = merge(
        [Interval(at(10), at(11)), Interval(at(8), at(9, 30)), Interval(at(10, 30), at(12)), Interval(at(12), at(13))],
        window=window,
    )
    assert merged == [Interval(at(9), at(9, 30)), Interval(at(10), at(13))]
    free = common_free([merged, [Interval(at(14), at(17, 45))]], window, min_minutes=30)
    assert free == [Interval(at(9, 30), at(10)), Interval(at(13), at(14))]  # 17:45-18:00 is too short


def test_google_free_busy_merges_each_person_and_finds_common_free_slots(api_client, organization):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock() as mock:
        call = mock.post(
            GOOGLE + "/freeBusy",
            json={
                "kind": "calendar#freeBusy",
                "timeMin": "2026-03-02T12:00:00.000Z",
                "timeMax": "2026-03-02T17:00:00.000Z",
                "calendars": {
                    "ana@example.com": {
                        "busy": [
                            {"start": "2026-03-02T13:00:00+01:00", "end": "2026-03-02T14:00:00+01:00"},
                            {"start": "2026-03-02T13:30:00+01:00", "end": "2026-03-02T14:30:00+01:00"},
                        ]
                    },
                    "ben@example.com": {"busy": [{"start": "2026-03-02T15:00:00Z", "end": "2026-03-02T16:00:00Z"}]},
                    "gone@example.com": {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []},
                },
            },
            match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
        )
        response = api_client.post(
            url(integration, "free-busy/"),
            {
                "emails": ["ana@example.com", "ben@example.com", "gone@example.com"],
                "start": "2026-03-02T13:00:00+01:00",
                "end": "2026-03-02T18:00:00+01:00",
                "time_zone": "Europe/Paris",
            },
            format="json",
        )
    assert response.status_code == HTTPStatus.OK, response.content
    assert body_of(call.calls[0]) == {
        "timeMin": "2026-03-02T13:00:00+01:00",
        "timeMax": "2026-03-02T18:00:00+01:00",
        "timeZone": "Europe/Paris",
        "items": [{"id": "ana@example.com"}, {"id": "ben@example.com"}, {"id": "gone@example.com"}],
    }
    data = response.json()
    assert data["busy"]["ana@example.com"] == [
        {"start": "2026-03-02T13:00:00+01:00", "end": "2026-03-02T14:30:00+01:00"}
    ]
    assert data["busy"]["ben@example.com"] == [
        {"start": "2026-03-02T16:00:00+01:00", "end": "2026-03-02T17:00:00+01:00"}
    ]
    assert data["free"] == [
        {"start": "2026-03-02T14:30:00+01:00", "end": "2026-03-02T16:00:00+01:00"},
        {"start": "2026-03-02T17:00:00+01:00", "end": "2026-03-02T18:00:00+01:00"},
    ]
    assert data["errors"] == {"gone@example.com": "notFound"}


def test_graph_get_schedule_asks_for_the_time_zone_and_counts_tentative_and_oof_as_busy(api_client, organization):
    integration = oauth(organization, "microsoft_outlook")
    with responses.RequestsMock() as mock:
        call = mock.post(
            GRAPH + "/me/calendar/getSchedule",
            json={
                "value": [
                    {
                        "scheduleId": "ana@example.com",
                        "availabilityView": "0220",
                        "scheduleItems": [
                            {
                                "status": "busy",
                                "start": {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "America/New_York"},
                                "end": {"dateTime": "2026-03-02T10:00:00.0000000", "timeZone": "America/New_York"},
                            },
                            {
                                "status": "free",
                                "start": {"dateTime": "2026-03-02T11:00:00.0000000", "timeZone": "America/New_York"},
                                "end": {"dateTime": "2026-03-02T12:00:00.0000000", "timeZone": "America/New_York"},
                            },
                        ],
                    },
                    {
                        "scheduleId": "ben@example.com",
                        "availabilityView": "0022",
                        "scheduleItems": [
                            {
                                "status": "tentative",
                                "start": {"dateTime": "2026-03-02T09:30:00.0000000", "timeZone": "America/New_York"},
                                "end": {"dateTime": "2026-03-02T10:30:00.0000000", "timeZone": "America/New_York"},
                            },
                            {
                                "status": "oof",
                                "start": {"dateTime": "2026-03-02T12:00:00.0000000", "timeZone": "America/New_York"},
                                "end": {"dateTime": "2026-03-02T13:00:00.0000000", "timeZone": "America/New_York"},
                            },
                        ],
                    },
                ]
            },
            match=[matchers.header_matcher({"Prefer": 'outlook.timezone="America/New_York"'})],
        )
        response = api_client.post(
            url(integration, "free-busy/"),
            {
                "emails": ["ana@example.com", "ben@example.com"],
                "start": "2026-03-02T13:00:00Z",
                "end": "2026-03-02T19:00:00Z",
                "time_zone": "America/New_York",
                "min_minutes": 30,
            },
            format="json",
        )
    assert response.status_code == HTTPStatus.OK, response.content
    sent = body_of(call.calls[0])
    assert sent["schedules"] == ["ana@example.com", "ben@example.com"]
    assert sent["startTime"] == {"dateTime": "2026-03-02T08:00:00", "timeZone": "America/New_York"}
    assert sent["endTime"] == {"dateTime": "2026-03-02T14:00:00", "timeZone": "America/New_York"}
    data = response.json()
    assert data["busy"]["ben@example.com"] == [
        {"start": "2026-03-02T09:30:00-05:00", "end": "2026-03-02T10:30:00-05:00"},
        {"start": "2026-03-02T12:00:00-05:00", "end": "2026-03-02T13:00:00-05:00"},
    ]
    assert data["free"] == [
        {"start": "2026-03-02T08:00:00-05:00", "end": "2026-03-02T09:00:00-05:00"},
        {"start": "2026-03-02T10:30:00-05:00", "end": "2026-03-02T12:00:00-05:00"},
        {"start": "2026-03-02T13:00:00-05:00", "end": "2026-03-02T14:00:00-05:00"},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"emails": [], "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T14:00:00Z"}, "emails"),
        ({"emails": ["not-an-email"], "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T14:00:00Z"}, "emails"),
        ({"emails": ["a@example.com"], "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T12:00:00Z"}, "end"),
        (
            {
                "emails": ["a@example.com"],
                "start": "2026-03-02T13:00:00Z",
                "end": "2026-03-02T14:00:00Z",
                "time_zone": "Mars/Olympus",
            },
            "time_zone",
        ),
        (
            {"emails": ["a@example.com"], "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T14:00:00Z", "bogus": 1},
            "bogus",
        ),
    ],
)
def test_bad_free_busy_input_is_a_json_400_before_any_call(api_client, organization, body, field):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock():  # nothing registered: any provider call would fail the test
        response = api_client.post(url(integration, "free-busy/"), body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in {key.split(".")[0] for key in field_errors(response)}, problem(response)


# --- interview events -----------------------------------------------------------------


def test_google_create_then_create_again_updates_the_same_event(
    api_client, organization, enqueued, django_capture_on_commit_callbacks
):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock() as mock, django_capture_on_commit_callbacks(execute=True):
        create = mock.post(
            GOOGLE + "/calendars/primary/events",
            json=google_event(),
            match=[matchers.query_param_matcher({"conferenceDataVersion": "1", "sendUpdates": "all"})],
        )
        first = api_client.put(url(integration, "interviews/int-42/"), INTERVIEW, format="json")
        assert first.status_code == HTTPStatus.CREATED, first.content
        update = mock.patch(
            GOOGLE + "/calendars/primary/events/evt1",
            json=google_event(etag='"2"', start="2026-03-02T15:00:00Z", end="2026-03-02T16:00:00Z"),
            match=[matchers.query_param_matcher({"conferenceDataVersion": "1", "sendUpdates": "all"})],
        )
        second = api_client.put(
            url(integration, "interviews/int-42/"),
            {**INTERVIEW, "start": "2026-03-02T16:00:00+01:00", "end": "2026-03-02T17:00:00+01:00"},
            format="json",
        )
    assert second.status_code == HTTPStatus.OK, second.content
    assert len(create.calls) == 1 and len(update.calls) == 1
    sent = body_of(create.calls[0])
    assert sent["summary"] == "Interview: Sam Lee" and sent["location"] == "Online"
    assert sent["start"] == {"dateTime": "2026-03-02T15:00:00+01:00", "timeZone": "Europe/Paris"}
    assert sent["attendees"] == [
        {"email": "ana@example.com", "optional": False},
        {"email": "sam@example.org", "displayName": "Sam Lee", "optional": True},
    ]
    assert sent["conferenceData"]["createRequest"]["conferenceSolutionKey"] == {"type": "hangoutsMeet"}
    assert "conferenceData" not in body_of(update.calls[0])  # the Meet link exists: not asked for again
    row = InterviewEvent.objects.get()
    assert (row.interview_id, row.provider_event_id, row.etag) == ("int-42", "evt1", '"2"')
    assert row.online_meeting_url == "https://meet.google.com/abc-defg-hij"
    assert row.start_at == at(15)
    data = second.json()
    assert data["state"] == "scheduled" and data["provider"] == "google_calendar"
    assert data["attendees"][1] == {
        "email": "sam@example.org",
        "name": "Sam Lee",
        "optional": True,
        "response_status": "needs_action",
    }
    assert enqueued[0] == ("integrations.calendar.tasks.ensure_subscription", str(integration.pk), "primary")


def test_outlook_create_asks_for_a_teams_meeting_and_update_patches(api_client, organization, enqueued):
    integration = oauth(organization, "microsoft_outlook")
    with responses.RequestsMock() as mock:
        create = mock.post(GRAPH + "/me/events", json=graph_event(), status=201)
        update = mock.patch(GRAPH + "/me/events/AAMkAD1", json=graph_event())
        assert api_client.put(url(integration, "interviews/int-7/"), INTERVIEW, format="json").status_code == 201
        assert api_client.put(url(integration, "interviews/int-7/"), INTERVIEW, format="json").status_code == 200
    sent = body_of(create.calls[0])
    assert sent["isOnlineMeeting"] is True and sent["onlineMeetingProvider"] == "teamsForBusiness"
    assert sent["subject"] == "Interview: Sam Lee"
    assert sent["start"] == {"dateTime": "2026-03-02T15:00:00", "timeZone": "Europe/Paris"}
    assert sent["attendees"][1] == {
        "emailAddress": {"address": "sam@example.org", "name": "Sam Lee"},
        "type": "optional",
    }
    assert sent["location"] == {"displayName": "Online"} and len(sent["transactionId"]) == 40
    assert len(update.calls) == 1 and "transactionId" not in body_of(update.calls[0])
    row = InterviewEvent.objects.get()
    assert row.online_meeting_url.startswith("https://teams.microsoft.com/")
    assert row.start_at == at(14)  # 15:00 Paris


def test_cancel_tells_the_provider_once_and_cancelling_again_is_a_no_op(api_client, organization, enqueued):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE + "/calendars/primary/events", json=google_event())
        api_client.put(url(integration, "interviews/int-42/"), INTERVIEW, format="json")
        delete = mock.delete(
            GOOGLE + "/calendars/primary/events/evt1",
            status=204,
            match=[matchers.query_param_matcher({"sendUpdates": "all"})],
        )
        first = api_client.delete(url(integration, "interviews/int-42/"))
        second = api_client.delete(url(integration, "interviews/int-42/"))
    assert first.status_code == second.status_code == HTTPStatus.OK
    assert len(delete.calls) == 1
    assert first.json()["state"] == second.json()["state"] == "cancelled"
    assert first.json()["cancelled_at"] == second.json()["cancelled_at"]


def test_outlook_cancel_posts_cancel(api_client, organization, enqueued):
    integration = oauth(organization, "microsoft_outlook")
    with responses.RequestsMock() as mock:
        mock.post(GRAPH + "/me/events", json=graph_event(), status=201)
        api_client.put(url(integration, "interviews/int-7/"), INTERVIEW, format="json")
        cancel = mock.post(GRAPH + "/me/events/AAMkAD1/cancel", status=202)
        assert api_client.delete(url(integration, "interviews/int-7/")).json()["state"] == "cancelled"
    assert "comment" in body_of(cancel.calls[0])


def test_get_reads_the_attendees_responses_back(api_client, organization, enqueued):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE + "/calendars/primary/events", json=google_event())
        api_client.put(url(integration, "interviews/int-42/"), INTERVIEW, format="json")
        mock.get(
            GOOGLE + "/calendars/primary/events/evt1",
            json=google_event(
                attendees=[
                    {"email": "ana@example.com", "responseStatus": "accepted"},
                    {"email": "sam@example.org", "responseStatus": "tentative", "optional": True},
                ]
            ),
        )
        response = api_client.get(url(integration, "interviews/int-42/"))
    assert response.status_code == HTTPStatus.OK
    assert [(a["email"], a["response_status"]) for a in response.json()["attendees"]] == [
        ("ana@example.com", "accepted"),
        ("sam@example.org", "tentative"),
    ]


def test_unknown_interview_is_404(api_client, organization):
    integration = oauth(organization, "google_calendar")
    assert api_client.get(url(integration, "interviews/nope/")).status_code == HTTPStatus.NOT_FOUND
    assert api_client.delete(url(integration, "interviews/nope/")).status_code == HTTPStatus.NOT_FOUND


def test_another_organizations_integration_is_404_and_nothing_is_called(other_client, organization):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock():
        assert other_client.put(url(integration, "interviews/int-1/"), INTERVIEW, format="json").status_code == 404
        assert other_client.post(url(integration, "free-busy/"), {}, format="json").status_code == 404
    assert not InterviewEvent.objects.exists()


def test_a_non_calendar_integration_is_a_400(api_client, organization):
    integration = api_key(organization, "rippling")
    response = api_client.put(url(integration, "interviews/int-1/"), INTERVIEW, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "not a calendar provider" in error_detail(response)


def test_bad_interview_input_is_a_json_400(api_client, organization):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock():
        response = api_client.put(
            url(integration, "interviews/int-1/"),
            {**INTERVIEW, "attendees": [{"email": "x"}], "title": ""},
            format="json",
        )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert {"attendees.0.email", "title"} <= set(field_errors(response)), problem(response)
    assert not InterviewEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_creates_at_once_make_one_provider_event(organization):
    from integrations.calendar.adapters import Attendee, InterviewSpec
    from integrations.calendar.services import interview_event_upsert
    from integrations.models import Integration

    integration = oauth(organization, "google_calendar")
    spec = InterviewSpec(
        interview_id="int-race", title="Race", start=at(9), end=at(10), attendees=(Attendee("a@example.com"),)
    )
    results: list = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(  # a slow provider: the second caller arrives while the first is inside
            responses.POST,
            GOOGLE + "/calendars/primary/events",
            callback=lambda r: (_sleep(0.3), (200, {}, _json(google_event())))[1],
        )
        update = mock.patch(GOOGLE + "/calendars/primary/events/evt1", json=google_event())
        copies = [Integration.objects.get(pk=integration.pk) for _ in range(2)]
        with Concurrently(
            *(lambda mine=mine: results.append(interview_event_upsert(integration=mine, spec=spec)) for mine in copies)
        ):
            pass
        posts = [c for c in mock.calls if c.request.method == "POST"]
    assert len(posts) == 1
    assert len(update.calls) == 1
    assert sorted(created for _, created in results) == [False, True]
    assert InterviewEvent.objects.filter(interview_id="int-race").count() == 1


def _sleep(seconds):
    import time

    time.sleep(seconds)


def _json(value):
    import json

    return json.dumps(value)


# --- permission refusals --------------------------------------------------------------


def test_google_insufficient_permissions_opens_a_missing_scopes_issue(api_client, organization):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock() as mock:
        mock.post(
            GOOGLE + "/calendars/primary/events",
            status=403,
            json={
                "error": {
                    "code": 403,
                    "message": "Request had insufficient authentication scopes.",
                    "errors": [
                        {"message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions"}
                    ],
                    "status": "PERMISSION_DENIED",
                }
            },
        )
        response = api_client.put(url(integration, "interviews/int-1/"), INTERVIEW, format="json")
    assert response.status_code == HTTPStatus.CONFLICT, response.content
    assert problem(response)["missing_scopes"] == ["https://www.googleapis.com/auth/calendar.events"]
    issue = ConnectionIssue.objects.get(integration=integration)
    assert (issue.kind, issue.status) == ("missing_scopes", "open")
    assert issue.details["missing_scopes"] == ["https://www.googleapis.com/auth/calendar.events"]
    assert not InterviewEvent.objects.exists()  # nothing stored for an event that was not made


@pytest.mark.parametrize("code", ["ErrorAccessDenied", "Authorization_RequestDenied"])
def test_graph_access_denied_opens_a_missing_scopes_issue(api_client, organization, code):
    integration = oauth(organization, "microsoft_outlook")
    with responses.RequestsMock() as mock:
        mock.post(
            GRAPH + "/me/calendar/getSchedule",
            status=403,
            json={"error": {"code": code, "message": "Access is denied. Check credentials and try again."}},
        )
        response = api_client.post(
            url(integration, "free-busy/"),
            {"emails": ["a@example.com"], "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T14:00:00Z"},
            format="json",
        )
    assert response.status_code == HTTPStatus.CONFLICT
    issue = ConnectionIssue.objects.get(integration=integration, kind="missing_scopes")
    assert issue.details["missing_scopes"] == ["Calendars.Read"]


def test_a_403_that_is_not_about_scopes_opens_no_issue(api_client, organization):
    integration = oauth(organization, "google_calendar")
    with responses.RequestsMock() as mock:
        mock.post(
            GOOGLE + "/freeBusy",
            status=403,
            json={
                "error": {
                    "code": 403,
                    "message": "Calendar usage limits exceeded.",
                    "errors": [{"domain": "usageLimits", "reason": "quotaExceeded"}],
                }
            },
        )
        response = api_client.post(
            url(integration, "free-busy/"),
            {"emails": ["a@example.com"], "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T14:00:00Z"},
            format="json",
        )
    assert response.status_code == HTTPStatus.BAD_GATEWAY
    assert not ConnectionIssue.objects.filter(kind="missing_scopes").exists()
