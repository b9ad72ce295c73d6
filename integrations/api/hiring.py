"""Hiring operations on connected integrations (docs/HIRING.md):

- `/api/integrations/{id}/calendar/free-busy/` (POST), `.../calendar/interviews/{interview_id}/`
  (GET with attendees' responses, PUT create-or-update, DELETE cancel): Google Calendar
  and Microsoft Outlook (integrations/calendar/);
- `/api/integrations/{id}/messages/` (POST) and `.../messages/channels/` (GET): Slack and
  Microsoft Teams (integrations/messaging.py).

Bodies are validated before the provider is called; another organization's integration
is a 404; a provider's refusal for want of a permission is a 409 (`missing_scopes`).
"""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from common.api import serializers as api
from common.api.schema import ERROR, VALIDATION_ERROR
from integrations.calendar import services as calendar
from integrations.calendar.adapters import Attendee, InterviewSpec
from integrations.calendar.freebusy import zone
from integrations.messaging import MAX_CHANNELS, message_channels, message_post
from integrations.models import Integration, InterviewEvent
from integrations.selectors import integration_list
from organizations.tenancy import OrganizationScopedMixin

INTERVIEW_ID_PATTERN = r"[A-Za-z0-9._:~-]{1,200}"
#: 400 a provider that does not do this, or a grant to renew; 409 `missing_scopes`
PROVIDER_ERRORS = {
    400: ERROR,
    404: ERROR,
    409: ERROR,
    429: ERROR,
    502: ERROR,
}


def _time_zone(value: str) -> str:
    try:
        zone(value)
    except ValueError as error:
        raise serializers.ValidationError(str(error)) from None
    return value


def _window(attrs: dict, *, longest=None) -> dict:
    if attrs["end"] <= attrs["start"]:
        raise serializers.ValidationError({"end": ["Must be after start."]})
    if longest is not None and attrs["end"] - attrs["start"] > longest:
        raise serializers.ValidationError({"end": [f"The window is at most {longest.days} days."]})
    return attrs


class FreeBusyRequestSerializer(api.Serializer):
    emails = serializers.ListField(
        child=serializers.EmailField(),
        min_length=1,
        max_length=calendar.MAX_FREE_BUSY_EMAILS,
        help_text="Interviewers.",
    )
    start = serializers.DateTimeField(help_text="Window start (ISO 8601 with an offset; naive times are UTC).")
    end = serializers.DateTimeField()
    time_zone = serializers.CharField(default="UTC", validators=[_time_zone], help_text="IANA name for the answer.")
    min_minutes = serializers.IntegerField(default=0, min_value=0, max_value=24 * 60, help_text="Shortest free slot.")

    def validate(self, attrs):
        return _window(attrs, longest=calendar.MAX_FREE_BUSY_WINDOW)


class IntervalSerializer(api.Serializer):
    start = serializers.CharField()
    end = serializers.CharField()


class FreeBusySerializer(api.Serializer):
    time_zone = serializers.CharField()
    start = serializers.CharField()
    end = serializers.CharField()
    busy = serializers.DictField(child=IntervalSerializer(many=True), help_text="Merged busy intervals per email.")
    free = IntervalSerializer(many=True, help_text="Slots free for everyone in the window.")
    errors = serializers.DictField(child=serializers.CharField(), help_text="Per email: why it could not be read.")


class AttendeeSerializer(api.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    optional = serializers.BooleanField(required=False, default=False)


class InterviewRequestSerializer(api.Serializer):
    title = serializers.CharField(max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, max_length=8000, default="")
    location = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    time_zone = serializers.CharField(default="UTC", validators=[_time_zone])
    attendees = AttendeeSerializer(many=True, max_length=100)
    online_meeting = serializers.BooleanField(default=True, help_text="Google Meet or Teams link.")
    calendar_id = serializers.CharField(default="primary", max_length=500, help_text="Used when the event is created.")

    def validate(self, attrs):
        return _window(attrs)


class InterviewAttendeeSerializer(api.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    optional = serializers.BooleanField()
    response_status = serializers.ChoiceField(
        choices=["needs_action", "accepted", "declined", "tentative", "organizer"]
    )


class InterviewEventSerializer(api.ModelSerializer):
    provider = serializers.CharField(source="integration.provider", read_only=True)
    attendees = serializers.SerializerMethodField()

    class Meta:
        model = InterviewEvent
        fields = [
            "interview_id",
            "provider",
            "calendar_id",
            "provider_event_id",
            "state",
            "title",
            "start_at",
            "end_at",
            "time_zone",
            "attendees",
            "online_meeting_url",
            "cancelled_at",
            "synced_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(InterviewAttendeeSerializer(many=True))
    def get_attendees(self, row: InterviewEvent) -> list[dict]:
        return InterviewAttendeeSerializer(
            [{"name": "", "optional": False, "response_status": "needs_action", **a} for a in row.attendees], many=True
        ).data


class MessageRequestSerializer(api.Serializer):
    text = serializers.CharField(max_length=4000)
    channel = serializers.CharField(required=False, max_length=200, default="", help_text="A channel id.")
    user = serializers.CharField(required=False, max_length=200, default="", help_text="A user id (direct message).")
    blocks = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=50, help_text="Slack Block Kit blocks."
    )
    team_id = serializers.CharField(required=False, max_length=200, default="", help_text="Teams: the channel's team.")

    def validate(self, attrs):
        if bool(attrs["channel"]) == bool(attrs["user"]):
            raise serializers.ValidationError({"channel": ["Give a channel or a user (one of them)."]})
        return attrs


class MessageSerializer(api.Serializer):
    provider = serializers.CharField()
    channel = serializers.CharField()
    message_id = serializers.CharField(help_text="Slack `ts`, Teams message id.")


class ChannelQuerySerializer(api.Serializer):
    team_id = serializers.CharField(required=False, max_length=200, default="", help_text="Teams: required.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_CHANNELS, default=MAX_CHANNELS)


class ChannelSerializer(api.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    is_private = serializers.BooleanField()
    is_member = serializers.BooleanField()


FREE_BUSY_EXAMPLE = [
    OpenApiExample(
        "Two interviewers on one afternoon",
        value={
            "emails": ["ana@example.com", "ben@example.com"],
            "start": "2026-03-02T13:00:00+01:00",
            "end": "2026-03-02T18:00:00+01:00",
            "time_zone": "Europe/Paris",
            "min_minutes": 45,
        },
        request_only=True,
    )
]
INTERVIEW_EXAMPLE = [
    OpenApiExample(
        "A video interview",
        value={
            "title": "Interview: Sam Lee (Backend engineer)",
            "description": "Technical interview, 60 minutes.",
            "location": "Online",
            "start": "2026-03-02T15:00:00+01:00",
            "end": "2026-03-02T16:00:00+01:00",
            "time_zone": "Europe/Paris",
            "attendees": [{"email": "ana@example.com"}, {"email": "sam.lee@example.org", "name": "Sam Lee"}],
            "online_meeting": True,
        },
        request_only=True,
    )
]
MESSAGE_EXAMPLE = [
    OpenApiExample(
        "To a Slack channel with blocks",
        value={
            "channel": "C0123456789",
            "text": "Sam Lee accepted the interview on March 2.",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Sam Lee* accepted the interview."}}],
        },
        request_only=True,
    ),
    OpenApiExample(
        "To a Teams channel",
        value={"team_id": "team-id", "channel": "19:abc@thread.tacv2", "text": "Interview moved to 16:00."},
        request_only=True,
    ),
]
INTERVIEW_ID = OpenApiParameter(
    "interview_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The platform's interview id."
)


class _IntegrationView(OrganizationScopedMixin, GenericAPIView):
    queryset = Integration.objects.all()
    pagination_class = None
    filter_backends: list = []

    def scoped_queryset(self, organization):
        return integration_list(organization=organization)


class FreeBusyView(_IntegrationView):
    serializer_class = FreeBusyRequestSerializer

    @extend_schema(
        summary="Free/busy of interviewers and the slots free for all (Google Calendar, Outlook)",
        description="Busy intervals per email, merged and clipped to the window, in `time_zone`; `free` lists the "
        "slots when nobody is busy, at least `min_minutes` long. Google `freeBusy`, Graph `getSchedule`.",
        request=FreeBusyRequestSerializer,
        responses={200: FreeBusySerializer, **PROVIDER_ERRORS, 400: VALIDATION_ERROR},
        examples=FREE_BUSY_EXAMPLE,
    )
    def post(self, request, pk=None):
        integration = self.get_object()
        body = FreeBusyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(calendar.calendar_free_busy(integration=integration, **body.validated_data))


class InterviewEventView(_IntegrationView):
    serializer_class = InterviewEventSerializer

    @extend_schema(
        summary="An interview's calendar event with its attendees' responses",
        description="Read again from the provider (attendees' `response_status`: needs_action, accepted, declined, "
        "tentative, organizer); a cancelled interview is answered as stored.",
        parameters=[INTERVIEW_ID],
        responses={200: InterviewEventSerializer, **PROVIDER_ERRORS},
    )
    def get(self, request, pk=None, interview_id=""):
        event = calendar.interview_event_get(integration=self.get_object(), interview_id=interview_id)
        return Response(InterviewEventSerializer(event).data)

    @extend_schema(
        summary="Create or update an interview's calendar event (idempotent by interview id)",
        description="201 when the event is created, 200 when the interview's existing event is updated (sending it "
        "twice never makes two events). Attendees are invited; `online_meeting` adds a Meet or Teams link.",
        parameters=[INTERVIEW_ID],
        request=InterviewRequestSerializer,
        responses={
            200: InterviewEventSerializer,
            201: InterviewEventSerializer,
            400: VALIDATION_ERROR,
            **PROVIDER_ERRORS,
        },
        examples=INTERVIEW_EXAMPLE,
    )
    def put(self, request, pk=None, interview_id=""):
        integration = self.get_object()
        body = InterviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        spec = InterviewSpec(
            interview_id=interview_id,
            title=data["title"],
            description=data["description"],
            location=data["location"],
            start=data["start"],
            end=data["end"],
            time_zone=data["time_zone"],
            attendees=tuple(Attendee(**a) for a in data["attendees"]),
            online_meeting=data["online_meeting"],
        )
        event, created = calendar.interview_event_upsert(
            integration=integration, spec=spec, calendar_id=data["calendar_id"]
        )
        return Response(InterviewEventSerializer(event).data, status=HTTPStatus.CREATED if created else HTTPStatus.OK)

    @extend_schema(
        summary="Cancel an interview's calendar event",
        description="Attendees are told. Cancelling a cancelled interview changes nothing and answers the same.",
        parameters=[INTERVIEW_ID],
        responses={200: InterviewEventSerializer, **PROVIDER_ERRORS},
    )
    def delete(self, request, pk=None, interview_id=""):
        event = calendar.interview_event_cancel(integration=self.get_object(), interview_id=interview_id)
        return Response(InterviewEventSerializer(event).data)


class MessageView(_IntegrationView):
    serializer_class = MessageRequestSerializer

    @extend_schema(
        summary="Post a message to a channel or a person (Slack, Microsoft Teams)",
        description="Slack `chat.postMessage` (`blocks` allowed; a user id sends a direct message); Teams: a channel "
        "message (`team_id` and `channel`) or a one-on-one chat (`user`). A channel Slack cannot post to is a 400.",
        request=MessageRequestSerializer,
        responses={200: MessageSerializer, **PROVIDER_ERRORS, 400: VALIDATION_ERROR},
        examples=MESSAGE_EXAMPLE,
    )
    def post(self, request, pk=None):
        integration = self.get_object()
        body = MessageRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(message_post(integration=integration, **body.validated_data))


class ChannelListView(_IntegrationView):
    serializer_class = ChannelSerializer

    @extend_schema(
        summary="Channels a message can be posted to (Slack, Microsoft Teams)",
        description="Slack: public and private conversations the app sees, every page of `conversations.list`; "
        "Teams: the channels of `team_id`.",
        parameters=[ChannelQuerySerializer],
        responses={200: ChannelSerializer(many=True), **PROVIDER_ERRORS, 400: VALIDATION_ERROR},
    )
    def get(self, request, pk=None):
        integration = self.get_object()
        query = ChannelQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(message_channels(integration=integration, **query.validated_data))
