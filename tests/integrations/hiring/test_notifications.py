"""Change notifications: Google watch channels and Graph subscriptions are created for the
calendars holding interviews, renewed before they expire (Graph PATCH; Google a new
channel and the old one stopped), verified when they arrive (a forged one is refused and
changes nothing), and processed into `interview.rsvp_changed` / `interview.updated_externally`
(Google: sync token, a 410 lists everything again)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.utils import timezone
from responses import matchers

from integrations.calendar import tasks
from integrations.calendar.services import calendar_subscriptions_renew_due
from integrations.models import CalendarSubscription, InterviewEvent
from webhooks.events import is_known_event, is_system_event
from webhooks.models import Event

from .conftest import GOOGLE, GRAPH, body_of, oauth
from .test_calendar import google_event, graph_event

pytestmark = pytest.mark.django_db

GOOGLE_HOOK = "/api/integrations/calendar/notifications/google/"
GRAPH_HOOK = "/api/integrations/calendar/notifications/microsoft/"


def interview(integration, event_id, **fields):
    values = {
        "organization": integration.organization,
        "integration": integration,
        "interview_id": "int-1",
        "provider_event_id": event_id,
    }
    return InterviewEvent.objects.create(**{**values, **fields})


def google_subscription(integration, **fields):
    values = {
        "organization": integration.organization,
        "integration": integration,
        "channel_id": "chan-1",
        "resource_id": "res-1",
        "client_state": "the-channel-token",
        "expires_at": timezone.now() + timedelta(days=6),
        "sync_token": "sync-1",
    }
    return CalendarSubscription.objects.create(**{**values, **fields})


def graph_subscription(integration, **fields):
    values = {
        "organization": integration.organization,
        "integration": integration,
        "channel_id": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
        "client_state": "the-client-state",
        "expires_at": timezone.now() + timedelta(days=2),
    }
    return CalendarSubscription.objects.create(**{**values, **fields})


def test_the_calendar_events_are_in_the_catalogue_and_system_only():
    for name in ("interview.rsvp_changed", "interview.updated_externally"):
        assert is_known_event(name) and is_system_event(name)
    assert not is_system_event("interview.scheduled")  # the namespace itself stays open to clients


def test_a_client_cannot_trigger_them(api_client):
    response = api_client.post("/api/events/", {"event": "interview.rsvp_changed", "payload": {}}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Event.objects.exists()


# --- creating -------------------------------------------------------------------------


def test_google_watch_channel_is_created_with_a_token_and_a_first_sync_token(organization):
    integration = oauth(organization, "google_calendar")
    expiration = int((timezone.now() + timedelta(days=7)).timestamp() * 1000)
    with responses.RequestsMock() as mock:
        watch = mock.post(
            GOOGLE + "/calendars/primary/events/watch",
            json={
                "kind": "api#channel",
                "id": "echo",
                "resourceId": "res-9",
                "resourceUri": "x",
                "expiration": str(expiration),
            },
        )
        mock.get(
            GOOGLE + "/calendars/primary/events",
            json={"items": [], "nextPageToken": "p2"},
            match=[matchers.query_param_matcher({"maxResults": "250", "showDeleted": "true"})],
        )
        mock.get(
            GOOGLE + "/calendars/primary/events",
            json={"items": [], "nextSyncToken": "sync-first"},
            match=[matchers.query_param_matcher({"maxResults": "250", "showDeleted": "true", "pageToken": "p2"})],
        )
        tasks.ensure_subscription(str(integration.pk), "primary")
        tasks.ensure_subscription(str(integration.pk), "primary")  # active already: no second channel
    sent = body_of(watch.calls[0])
    assert len(watch.calls) == 1
    assert sent["type"] == "web_hook"
    assert sent["address"] == "https://hire.example.com" + GOOGLE_HOOK
    assert len(sent["token"]) >= 32 and sent["params"] == {"ttl": "604800"}
    subscription = CalendarSubscription.objects.get()
    assert subscription.channel_id == "echo" and subscription.resource_id == "res-9"
    assert subscription.client_state == sent["token"]
    assert subscription.sync_token == "sync-first" and subscription.state == "active"
    assert abs(subscription.expires_at.timestamp() * 1000 - expiration) < 1000


def test_graph_subscription_asks_for_at_most_4230_minutes_with_a_client_state(organization):
    integration = oauth(organization, "microsoft_outlook")
    with responses.RequestsMock() as mock:
        create = mock.post(
            GRAPH + "/subscriptions",
            status=201,
            json={
                "id": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
                "resource": "me/events",
                "changeType": "updated,deleted",
                "expirationDateTime": "2026-12-04T11:00:00.0000000Z",
            },
        )
        tasks.ensure_subscription(str(integration.pk), "primary")
    sent = body_of(create.calls[0])
    assert sent["changeType"] == "updated,deleted" and sent["resource"] == "me/events"
    assert sent["notificationUrl"] == "https://hire.example.com" + GRAPH_HOOK
    expires = timezone.datetime.fromisoformat(sent["expirationDateTime"].replace(".0000000Z", "+00:00"))
    assert timedelta(minutes=4200) < expires - timezone.now() <= timedelta(minutes=4230)
    subscription = CalendarSubscription.objects.get()
    assert subscription.client_state == sent["clientState"] and len(sent["clientState"]) >= 32
    assert subscription.channel_id == "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"


# --- renewing -------------------------------------------------------------------------


def test_graph_subscriptions_expiring_soon_are_renewed_with_patch_and_others_left(organization):
    integration = oauth(organization, "microsoft_outlook")
    soon = graph_subscription(integration, expires_at=timezone.now() + timedelta(hours=1))
    later = graph_subscription(
        integration, calendar_id="other", channel_id="later", expires_at=timezone.now() + timedelta(days=2)
    )
    with responses.RequestsMock() as mock:
        renew = mock.patch(
            GRAPH + "/subscriptions/" + soon.channel_id,
            json={"id": soon.channel_id, "expirationDateTime": "2026-12-05T10:00:00Z"},
        )
        assert tasks.renew_subscriptions() == {"renewed": 1, "failed": 0}
    assert list(body_of(renew.calls[0])) == ["expirationDateTime"]
    soon.refresh_from_db()
    later_before = later.expires_at
    later.refresh_from_db()
    assert soon.expires_at.isoformat() == "2026-12-05T10:00:00+00:00" and soon.renewed_at is not None
    assert later.expires_at == later_before


def test_google_channel_is_replaced_before_expiry_and_the_old_one_stopped(organization):
    integration = oauth(organization, "google_calendar")
    old = google_subscription(integration, expires_at=timezone.now() + timedelta(hours=2))
    expiration = int((timezone.now() + timedelta(days=7)).timestamp() * 1000)
    with responses.RequestsMock() as mock:
        watch = mock.post(
            GOOGLE + "/calendars/primary/events/watch",
            json={"id": "new", "resourceId": "res-2", "expiration": str(expiration)},
        )
        mock.get(GOOGLE + "/calendars/primary/events", json={"items": [], "nextSyncToken": "fresh"})
        stop = mock.post(GOOGLE + "/channels/stop", status=204)
        calendar_subscriptions_renew_due()
    assert body_of(stop.calls[0]) == {"id": "chan-1", "resourceId": "res-1"}
    assert body_of(watch.calls[0])["id"] != "chan-1"
    old.refresh_from_db()
    assert old.channel_id == "new" and old.resource_id == "res-2" and old.state == "active"
    assert old.sync_token == "sync-1"  # changes are read on from where they were
    assert old.expires_at > timezone.now() + timedelta(days=6)


def test_a_failed_renewal_marks_the_subscription_failed(organization):
    integration = oauth(organization, "microsoft_outlook")
    subscription = graph_subscription(integration, expires_at=timezone.now() + timedelta(hours=1))
    with responses.RequestsMock() as mock:
        mock.patch(
            GRAPH + "/subscriptions/" + subscription.channel_id,
            status=400,
            json={
                "error": {
                    "code": "InvalidRequest",
                    "message": "Subscription expiration can only be 4230 minutes in the future.",
                }
            },
        )
        assert calendar_subscriptions_renew_due() == {"renewed": 0, "failed": 1}
    subscription.refresh_from_db()
    assert subscription.state == "failed" and "4230" in subscription.last_error


# --- inbound: verified ----------------------------------------------------------------


def google_headers(channel="chan-1", token="the-channel-token", state="exists", resource="res-1"):
    return {
        "HTTP_X_GOOG_CHANNEL_ID": channel,
        "HTTP_X_GOOG_CHANNEL_TOKEN": token,
        "HTTP_X_GOOG_RESOURCE_STATE": state,
        "HTTP_X_GOOG_RESOURCE_ID": resource,
        "HTTP_X_GOOG_MESSAGE_NUMBER": "2",
    }


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (google_headers(token="forged"), HTTPStatus.FORBIDDEN),
        (google_headers(token=""), HTTPStatus.FORBIDDEN),
        (google_headers(resource="someone-else"), HTTPStatus.FORBIDDEN),
        (google_headers(channel="unknown"), HTTPStatus.NOT_FOUND),
        ({}, HTTPStatus.NOT_FOUND),
    ],
)
def test_a_forged_google_notification_is_refused_and_changes_nothing(
    anon_client, organization, enqueued, headers, status
):
    subscription = google_subscription(oauth(organization, "google_calendar"))
    response = anon_client.post(GOOGLE_HOOK, **headers)
    assert response.status_code == status
    assert response.json()["type"]
    assert enqueued == []
    subscription.refresh_from_db()
    assert subscription.last_notification_at is None


def test_a_google_notification_with_the_token_is_queued_for_processing(anon_client, organization, enqueued):
    subscription = google_subscription(oauth(organization, "google_calendar"))
    assert anon_client.post(GOOGLE_HOOK, **google_headers(state="sync")).status_code == HTTPStatus.OK
    assert enqueued == []  # the first message of a channel says nothing changed
    assert anon_client.post(GOOGLE_HOOK, **google_headers()).status_code == HTTPStatus.OK
    assert enqueued == [("integrations.calendar.tasks.process_changes", str(subscription.pk), None)]


def test_graph_validation_handshake_echoes_the_token_as_text(anon_client):
    response = anon_client.post(GRAPH_HOOK + "?validationToken=Validation%3A+Testing+client+application")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"Validation: Testing client application"


def graph_notification(subscription_id, client_state, event_id="AAMkAD1", change="updated"):
    return {
        "value": [
            {
                "subscriptionId": subscription_id,
                "subscriptionExpirationDateTime": "2026-12-04T11:00:00.0000000Z",
                "changeType": change,
                "resource": f"Users/ddfcd489/Events/{event_id}",
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": f"Users/ddfcd489/Events/{event_id}",
                    "id": event_id,
                },
                "clientState": client_state,
                "tenantId": "bb8775a4-4d8c-42cf-a1d4-4d58c2bb668f",
            }
        ]
    }


@pytest.mark.parametrize(("state", "status"), [("forged", HTTPStatus.FORBIDDEN), (None, HTTPStatus.FORBIDDEN)])
def test_a_forged_graph_notification_is_refused(anon_client, organization, enqueued, state, status):
    subscription = graph_subscription(oauth(organization, "microsoft_outlook"))
    response = anon_client.post(GRAPH_HOOK, graph_notification(subscription.channel_id, state), format="json")
    assert response.status_code == status
    assert enqueued == []
    unknown = anon_client.post(GRAPH_HOOK, graph_notification("not-ours", "the-client-state"), format="json")
    assert unknown.status_code == HTTPStatus.NOT_FOUND
    assert anon_client.post(GRAPH_HOOK, {"value": "x"}, format="json").status_code == HTTPStatus.BAD_REQUEST
    assert anon_client.post(GRAPH_HOOK, "{not json", content_type="application/json").status_code == 400
    subscription.refresh_from_db()
    assert subscription.last_notification_at is None


# --- processing -----------------------------------------------------------------------


def test_graph_notification_of_a_declined_invitation_becomes_rsvp_changed(anon_client, organization, enqueued):
    integration = oauth(organization, "microsoft_outlook")
    subscription = graph_subscription(integration)
    row = interview(
        integration,
        "AAMkAD1",
        attendees=[{"email": "ana@example.com", "response_status": "needs_action"}],
        start_at=timezone.datetime(2026, 3, 2, 14, tzinfo=timezone.get_fixed_timezone(0)),
        end_at=timezone.datetime(2026, 3, 2, 15, tzinfo=timezone.get_fixed_timezone(0)),
    )
    response = anon_client.post(
        GRAPH_HOOK, graph_notification(subscription.channel_id, "the-client-state"), format="json"
    )
    assert response.status_code == HTTPStatus.ACCEPTED
    ((name, subscription_id, event_ids),) = enqueued
    with responses.RequestsMock() as mock:
        mock.get(GRAPH + "/me/events/AAMkAD1", json=graph_event(response="declined"))
        assert getattr(tasks, name.rsplit(".", 1)[1])(subscription_id, event_ids) == 1
    event = Event.objects.get()
    assert event.type == "interview.rsvp_changed"
    assert event.payload["interview_id"] == "int-1"
    assert event.payload["attendee"]["email"] == "ana@example.com"
    assert (event.payload["previous_response_status"], event.payload["response_status"]) == ("needs_action", "declined")
    row.refresh_from_db()
    assert row.attendees[0]["response_status"] == "declined"


def test_graph_deleted_event_becomes_updated_externally_cancelled(organization):
    integration = oauth(organization, "microsoft_outlook")
    subscription = graph_subscription(integration)
    row = interview(integration, "AAMkAD1")
    with responses.RequestsMock() as mock:
        mock.get(
            GRAPH + "/me/events/AAMkAD1",
            status=404,
            json={
                "error": {"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}
            },
        )
        tasks.process_changes(str(subscription.pk), ["AAMkAD1"])
    event = Event.objects.get()
    assert (event.type, event.payload["change"]) == ("interview.updated_externally", "cancelled")
    row.refresh_from_db()
    assert row.state == "cancelled"


def test_google_changes_since_the_sync_token_a_move_becomes_updated_externally(organization):
    integration = oauth(organization, "google_calendar")
    subscription = google_subscription(integration)
    interview(
        integration,
        "evt1",
        attendees=[{"email": "ana@example.com", "response_status": "needs_action"}],
        start_at=timezone.datetime(2026, 3, 2, 14, tzinfo=timezone.get_fixed_timezone(0)),
        end_at=timezone.datetime(2026, 3, 2, 15, tzinfo=timezone.get_fixed_timezone(0)),
    )
    moved = google_event(
        start="2026-03-02T16:00:00Z",
        end="2026-03-02T17:00:00Z",
        attendees=[{"email": "ana@example.com", "responseStatus": "needsAction"}],
    )
    with responses.RequestsMock() as mock:
        mock.get(
            GOOGLE + "/calendars/primary/events",
            json={"items": [moved, google_event("not-an-interview")], "nextSyncToken": "sync-2"},
            match=[matchers.query_param_matcher({"syncToken": "sync-1", "maxResults": "250", "showDeleted": "true"})],
        )
        tasks.process_changes(str(subscription.pk))
    event = Event.objects.get()
    assert event.type == "interview.updated_externally"
    assert event.payload["change"] == "moved"
    assert event.payload["start"] == "2026-03-02T16:00:00+00:00"
    assert event.payload["previous_start"] == "2026-03-02T14:00:00+00:00"
    subscription.refresh_from_db()
    assert subscription.sync_token == "sync-2"


def test_google_410_on_the_sync_token_resyncs_everything(organization):
    integration = oauth(organization, "google_calendar")
    subscription = google_subscription(integration)
    interview(
        integration,
        "evt1",
        attendees=[{"email": "ana@example.com", "response_status": "needs_action"}],
        start_at=timezone.datetime(2026, 3, 2, 14, tzinfo=timezone.get_fixed_timezone(0)),
        end_at=timezone.datetime(2026, 3, 2, 15, tzinfo=timezone.get_fixed_timezone(0)),
    )
    accepted = google_event(attendees=[{"email": "ana@example.com", "responseStatus": "accepted"}])
    with responses.RequestsMock() as mock:
        gone = mock.get(
            GOOGLE + "/calendars/primary/events",
            status=410,
            json={
                "error": {
                    "code": 410,
                    "message": "Sync token is no longer valid, a full sync is required.",
                    "errors": [{"domain": "global", "reason": "fullSyncRequired"}],
                }
            },
            match=[matchers.query_param_matcher({"syncToken": "sync-1", "maxResults": "250", "showDeleted": "true"})],
        )
        full = mock.get(
            GOOGLE + "/calendars/primary/events",
            json={"items": [accepted], "nextSyncToken": "sync-full"},
            match=[matchers.query_param_matcher({"maxResults": "250", "showDeleted": "true"})],
        )
        tasks.process_changes(str(subscription.pk))
    assert len(gone.calls) == 1 and len(full.calls) == 1
    subscription.refresh_from_db()
    assert subscription.sync_token == "sync-full"
    event = Event.objects.get()
    assert event.type == "interview.rsvp_changed" and event.payload["response_status"] == "accepted"


def test_a_cancelled_google_event_becomes_updated_externally_once(organization):
    integration = oauth(organization, "google_calendar")
    subscription = google_subscription(integration)
    interview(integration, "evt1")
    with responses.RequestsMock() as mock:
        mock.get(
            GOOGLE + "/calendars/primary/events",
            json={"items": [{"id": "evt1", "status": "cancelled"}], "nextSyncToken": "s2"},
        )
        tasks.process_changes(str(subscription.pk))
        mock.get(
            GOOGLE + "/calendars/primary/events",
            json={"items": [{"id": "evt1", "status": "cancelled"}], "nextSyncToken": "s3"},
        )
        tasks.process_changes(str(subscription.pk))
    assert [(e.type, e.payload["change"]) for e in Event.objects.all()] == [
        ("interview.updated_externally", "cancelled")
    ]


def test_setup_schedules_creates_the_renewal_schedule():
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=__import__("io").StringIO())
    schedule = Schedule.objects.get(name="integrations.renew_calendar_subscriptions")
    assert schedule.func == "integrations.calendar.tasks.renew_subscriptions"
    assert schedule.minutes == 60
