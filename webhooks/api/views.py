from __future__ import annotations

import uuid

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api.pagination import CursorPagination
from common.api.schema import ERROR, VALIDATION_ERROR
from common.api.serializers import validated_query
from organizations.access import request_organization
from organizations.tenancy import OrganizationScopedMixin
from webhooks import selectors, services
from webhooks.events import event_definitions, is_system_event
from webhooks.models import EventType, Webhook, WebhookLog

from . import rows
from .examples import (
    EVENT_BATCH,
    EVENT_TRIGGER,
    EVENT_TYPE_CREATE,
    EVENT_TYPE_PATCH,
    RECOVER,
    WEBHOOK_CREATE,
    WEBHOOK_PATCH,
    WEBHOOK_UPDATE,
)
from .serializers import (
    EventAcceptedSerializer,
    EventBatchAcceptedSerializer,
    EventBatchSerializer,
    EventCatalogueEntrySerializer,
    EventTriggerSerializer,
    EventTypeSerializer,
    RecoverResultSerializer,
    RecoverSerializer,
    WebhookCreateSerializer,
    WebhookLogFilterSerializer,
    WebhookLogSerializer,
    WebhookSecretSerializer,
    WebhookSerializer,
    WebhookStatsFilterSerializer,
    WebhookStatsSerializer,
)

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
LOG_FILTERS = [
    OpenApiParameter("success", OpenApiTypes.BOOL, description="only successful (true) or failed (false) attempts"),
    OpenApiParameter("event", OpenApiTypes.STR, description="event type"),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="attempts at or after"),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="attempts at or before"),
]


@extend_schema_view(
    create=extend_schema(
        summary="Create a webhook (its signing secret is returned once, here)",
        request=WebhookCreateSerializer,
        responses={201: WebhookSecretSerializer},
        examples=WEBHOOK_CREATE,
    ),
    update=extend_schema(examples=WEBHOOK_UPDATE),
    partial_update=extend_schema(examples=WEBHOOK_PATCH),
)
class WebhookViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """Webhooks of the organization. The secret is returned only by create and rotate-secret."""

    queryset = Webhook.objects.all()
    serializer_class = WebhookSerializer
    lookup_value_regex = UUID_PATTERN

    #: what `logs` and `stats` read of the webhook: nothing else is loaded (or decrypted)
    read_fields = {"logs": selectors.WEBHOOK_LOG_FIELDS, "stats": selectors.WEBHOOK_STATS_FIELDS}

    def scoped_queryset(self, organization):
        return selectors.webhook_list(organization=organization)

    def get_object(self):
        fields = self.read_fields.get(self.action)
        if fields is None:
            return super().get_object()
        # What `super().get_object()` does (a 404 for a malformed id or another organization's
        # webhook), through the selector's compiled query.
        try:
            pk = uuid.UUID(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        except ValueError:
            raise Http404 from None
        webhook = selectors.webhook_get(organization=self.organization, pk=pk, fields=fields)
        if webhook is None:
            raise Http404
        self.check_object_permissions(self.request, webhook)
        return webhook

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        # What WebhookSerializer(page, many=True).data gives, built by hand (webhooks/api/rows.py).
        return self.get_paginated_response(rows.webhook_rows(page or []))

    def create(self, request, *args, **kwargs):
        serializer = WebhookCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        webhook = services.webhook_create(organization=self.organization, **serializer.validated_data)
        return Response(WebhookSecretSerializer(webhook).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.webhook_update(webhook=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.webhook_delete(webhook=instance)

    @extend_schema(
        request=None,
        responses={200: WebhookLogSerializer, 409: ERROR},
        summary="Send a webhook.test event now (409 while that delivery is being sent)",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        log = services.webhook_send_test(webhook=self.get_object())
        return Response(WebhookLogSerializer(log).data)

    @extend_schema(
        parameters=LOG_FILTERS,
        responses=WebhookLogSerializer(many=True),
        summary="Attempts, newest first (cursor pagination: follow `next`)",
    )
    @action(detail=True, methods=["get"], pagination_class=CursorPagination)
    def logs(self, request, pk=None):
        webhook = self.get_object()
        filters = validated_query(WebhookLogFilterSerializer, request.query_params)
        paginator = self.paginator
        after, size = paginator.keyset(request)
        logs = selectors.webhook_log_page(webhook=webhook, after=after, limit=size + 1, **filters)
        page = paginator.paginate_rows(logs, size)
        # What WebhookLogSerializer(page, many=True).data gives, built from the rows (webhooks/api/rows.py).
        return self.get_paginated_response(rows.log_rows(page))

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "window",
                OpenApiTypes.STR,
                enum=["24h", "7d", "30d"],
                description="window of `window_stats` (default 24h)",
            )
        ],
        responses=WebhookStatsSerializer,
        summary="Delivery statistics (from hourly rollups kept in the engine's write: never stale)",
    )
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        params = validated_query(WebhookStatsFilterSerializer, request.query_params)
        stats = selectors.webhook_stats(webhook=self.get_object(), **params)
        # What WebhookStatsSerializer(stats).data gives, built directly (webhooks/api/rows.py).
        return Response(rows.stats_body(stats))

    @extend_schema(
        request=None,
        responses={201: WebhookLogSerializer, 409: ERROR},
        parameters=[OpenApiParameter("log_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        summary="Send a logged attempt's event to this webhook again",
    )
    @action(detail=True, methods=["post"], url_path=rf"logs/(?P<log_id>{UUID_PATTERN})/replay")
    def replay(self, request, pk=None, log_id=None):
        webhook = self.get_object()
        log = get_object_or_404(WebhookLog.objects.select_related("webhook"), pk=log_id, webhook=webhook)
        new_log = services.log_replay(log=log)
        return Response(WebhookLogSerializer(new_log).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=RecoverSerializer,
        responses={202: RecoverResultSerializer, 400: VALIDATION_ERROR, 409: ERROR},
        summary="Re-send every failed delivery in the window (409 when the webhook is disabled)",
        examples=RECOVER,
    )
    @action(detail=True, methods=["post"])
    def recover(self, request, pk=None):
        webhook = self.get_object()
        serializer = RecoverSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.deliveries_recover(webhook=webhook, **serializer.validated_data)
        return Response(RecoverResultSerializer(result).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=WebhookSecretSerializer, summary="New secret; the old one signs 24 h more")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        webhook = services.webhook_rotate_secret(webhook=self.get_object())
        return Response(WebhookSecretSerializer(webhook).data)


@extend_schema(tags=["events"])
class EventCatalogueView(APIView):
    @extend_schema(
        responses=EventCatalogueEntrySerializer(many=True),
        summary="The event catalogue (system_only: emitted by the platform only, not through POST /api/events/)",
    )
    def get(self, request):
        return Response(EventCatalogueEntrySerializer(catalogue_entries(request), many=True).data)


def catalogue_entries(request) -> list[dict]:
    """The catalogue, then the organization's own event types (one query)."""
    entries = [
        {
            "event": name,
            "description": d.description,
            "system_only": is_system_event(name),
            "version": d.version,
            "schema": d.schema,
            "example": d.example,
            "deprecated": d.deprecated,
            "custom": False,
            "retention_days": d.retention_days,
        }
        for name, d in sorted(event_definitions().items())
    ]
    for row in selectors.event_type_list(organization=request_organization(request)):
        entries.append(
            {
                "event": row.name,
                "description": row.description,
                "system_only": False,
                "version": row.version,
                "schema": row.schema,
                "example": row.example,
                "deprecated": row.deprecated,
                "custom": True,
                "retention_days": row.retention_days,
            }
        )
    return entries


@extend_schema_view(
    list=extend_schema(summary="The organization's own event types (custom.*)"),
    retrieve=extend_schema(summary="One custom event type"),
    create=extend_schema(
        summary="Register a custom event type with its JSON Schema",
        responses={201: EventTypeSerializer, 409: ERROR},
        examples=EVENT_TYPE_CREATE,
    ),
    partial_update=extend_schema(summary="Change a custom event type (e.g. deprecate it)", examples=EVENT_TYPE_PATCH),
    destroy=extend_schema(summary="Delete a custom event type"),
)
class EventTypeViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """An organization's own event types: only it sees, subscribes to and triggers them."""

    queryset = EventType.objects.all()
    serializer_class = EventTypeSerializer
    lookup_field = "name"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]  # the name never changes: no PUT
    lookup_value_regex = r"custom\.[a-z0-9_.]+"

    def scoped_queryset(self, organization):
        return selectors.event_type_list(organization=organization)

    def perform_create(self, serializer):
        serializer.instance = services.event_type_create(organization=self.organization, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.event_type_update(event_type=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.event_type_delete(event_type=instance)


@extend_schema(tags=["events"])
class EventTriggerView(APIView):
    @extend_schema(
        request=EventTriggerSerializer,
        responses={202: EventAcceptedSerializer, 409: ERROR},
        summary="Trigger an event (not a system-only one: integration.* and webhook.* are the platform's)",
        examples=EVENT_TRIGGER,
    )
    def post(self, request):
        fields = _plain_trigger_fields(request.data)
        if fields is None:  # anything unusual: the serializer validates it and words the 400
            serializer = EventTriggerSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            fields = serializer.validated_data
        event = services.trigger_client_event(organization=request_organization(request), **fields)
        # Built directly (the schema is EventAcceptedSerializer), as the batch's items are.
        body = {"id": str(event.id), "event": event.type, "deliveries": event.delivery_count}
        return Response(body, status=status.HTTP_202_ACCEPTED)


_TRIGGER_FIELDS = frozenset({"event", "payload", "idempotency_key"})


def _plain_text(value: object, max_length: int) -> bool:
    """A string `EventTriggerSerializer`'s CharField would return unchanged: ASCII (so no
    surrogates), no NUL, not blank, no surrounding whitespace to trim, within `max_length`."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_length
        and value.isascii()
        and "\x00" not in value
        and value == value.strip()
    )


def _plain_trigger_fields(data: object) -> dict | None:
    """The fields `EventTriggerSerializer` would validate `data` into, without building it
    (its fields are deep-copied per instance: ~10% of the request), when `data` is an
    ordinary valid body; else None, and the serializer takes it (every error stays its own)."""
    if type(data) is not dict or not _TRIGGER_FIELDS.issuperset(data):
        return None
    event = data.get("event")
    if not _plain_text(event, 100):
        return None
    payload = data.get("payload", {})
    if type(payload) is not dict:  # None (refused), or not an object (the service words that)
        return None
    key = data.get("idempotency_key")
    if key is not None and not _plain_text(key, 200):
        return None
    return {"event": event, "payload": payload, "idempotency_key": key}


def _plain_batch_events(data: object) -> list | None:
    """The `events` list `EventBatchSerializer` would pass on, without running its list
    field over every item, when `data` is `{"events": [1 to MAX_BATCH_EVENTS non-null items]}`;
    else None, and the serializer takes it."""
    if type(data) is not dict or len(data) != 1:
        return None
    events = data.get("events")
    if type(events) is not list or not 0 < len(events) <= services.MAX_BATCH_EVENTS or None in events:
        return None
    return events


@extend_schema(tags=["events"])
class EventBatchView(APIView):
    @extend_schema(
        request=EventBatchSerializer,
        responses={202: EventBatchAcceptedSerializer},
        summary="Trigger up to 1,000 events at once, each with its own idempotency key and result",
        description="One transaction for the whole batch. Each item is validated like a POST /api/events/ body "
        "(system-only events refused): an invalid item, or an idempotency key already used with another type "
        "or payload, is that item's `error` and the valid items are stored. A key repeated in the batch or from "
        "an earlier request returns the first event as `repeat`. A body that is not a list of 1 to 1,000 items "
        "is a 400 and nothing is stored.",
        examples=EVENT_BATCH,
    )
    def post(self, request):
        events = _plain_batch_events(request.data)
        if events is None:  # anything unusual: the serializer validates it and words the 400
            serializer = EventBatchSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            events = serializer.validated_data["events"]
        # Each item is validated by the service (its errors are that item's result).
        results = services.trigger_client_events(organization=request_organization(request), events=events)
        # Built directly (the schema is EventBatchAcceptedSerializer): up to 1,000 items.
        body = [_batch_result(result) for result in results]
        return Response({"results": body}, status=status.HTTP_202_ACCEPTED)


def _batch_result(result: services.TriggerResult) -> dict:
    event_type = result.event_type if isinstance(result.event_type, str) else None
    if result.event is None:
        return {
            "index": result.index,
            "id": None,
            "event": event_type,
            "deliveries": 0,
            "status": result.status,
            "errors": result.errors,
        }
    return {
        "index": result.index,
        "id": str(result.event.pk),
        "event": event_type,
        "deliveries": result.event.delivery_count,
        "status": result.status,
    }
