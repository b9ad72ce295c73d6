"""Read-only admin pages of what the engine did: attempt logs (with a replay action),
deliveries and events."""

from __future__ import annotations

import json
import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from common.admin import colour_badge
from common.exceptions import ApplicationError
from common.text import count_of
from organizations.admin_scoping import OrganizationScopedAdmin

from ..engine.sending import event_body
from ..masking import masked_payload, masked_response_body
from ..models import Delivery, Event, Webhook, WebhookLog
from ..services import log_replay
from .webhooks import admin_time

#: attempts one "Replay" action sends at most: each is sent now, within the request
REPLAY_LIMIT = 10
SHORT_ERROR = 60


class ReadOnlyAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WebhookFilter(admin.SimpleListFilter):
    """The webhooks the user may see (not every organization's, as a related-field filter would list)."""

    title = "webhook"
    parameter_name = "webhook"

    def lookups(self, request, model_admin):
        webhooks = list(
            model_admin.scoped(Webhook.objects.select_related("organization"), request).order_by(
                "organization__name", "name"
            )
        )
        several = len({w.organization_id for w in webhooks}) > 1
        return [(str(w.pk), f"{w.name} ({w.organization.name})" if several else w.name) for w in webhooks]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            return queryset.filter(webhook_id=uuid.UUID(self.value()))
        except ValueError:
            return queryset.none()


def _pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _pre(text: str):
    return format_html('<pre style="white-space:pre-wrap;word-break:break-all;margin:0;max-width:60em">{}</pre>', text)


@admin.register(WebhookLog)
class WebhookLogAdmin(ReadOnlyAdmin):
    list_display = ["time", "webhook", "event", "attempt_number", "result", "duration", "short_error"]
    list_display_links = ["time"]
    list_filter = [WebhookFilter, "success", "event_type", "response_status", "webhook__organization"]
    list_select_related = ["webhook"]
    search_fields = ["webhook__name", "error"]
    date_hierarchy = "created_at"
    actions = ["replay"]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "time",
                    "webhook",
                    "event_type",
                    "message_id",
                    "delivery",
                    "attempt",
                    "result",
                    "duration",
                    "error",
                )
            },
        ),
        ("Request", {"fields": ("request_url", "request_headers_pretty", "request_body")}),
        ("Response", {"fields": ("response_status", "response_body_pretty")}),
    ]
    readonly_fields = [
        "time",
        "webhook",
        "event_type",
        "message_id",
        "delivery",
        "attempt",
        "result",
        "duration",
        "error",
        "request_url",
        "request_headers_pretty",
        "request_body",
        "response_status",
        "response_body_pretty",
    ]

    def scoped(self, queryset, request):
        """Rows of `queryset` (any model with an `organization`) this user may see."""
        return self._scope(queryset, request)

    def get_search_results(self, request, queryset, search_term):
        """Also by message id (`msg_<delivery id hex>`: the logs of that delivery)."""
        results, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.startswith("msg_"):
            try:
                delivery_id = uuid.UUID(hex=term.removeprefix("msg_"))
            except ValueError:
                return results, duplicates
            results |= queryset.filter(delivery_id=delivery_id)
        return results, duplicates

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name == "webhooks_webhooklog_change":
            queryset = queryset.select_related("webhook", "delivery__event__organization")
        return queryset

    @admin.display(description=f"Time ({timezone.get_current_timezone_name()})", ordering="created_at")
    def time(self, obj: WebhookLog):
        return format_html('<span style="white-space:nowrap">{}</span>', admin_time(obj.created_at))

    @admin.display(description="Event", ordering="event_type")
    def event(self, obj: WebhookLog) -> str:
        return obj.event_type

    @admin.display(description="#", ordering="attempt")
    def attempt_number(self, obj: WebhookLog) -> int:
        return obj.attempt

    @admin.display(description="Result", ordering="success")
    def result(self, obj: WebhookLog):
        """A green or red badge with the HTTP status (or "no answer")."""
        text = str(obj.response_status) if obj.response_status is not None else "no answer"
        if obj.success:
            return colour_badge(f"ok · {text}", "#2e7d32")
        return colour_badge(f"failed · {text}", "#c62828")

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, obj: WebhookLog):
        return format_html('<span style="white-space:nowrap">{} ms</span>', f"{obj.duration_ms:,.1f}")

    @admin.display(description="Error", ordering="error")
    def short_error(self, obj: WebhookLog):
        if len(obj.error) <= SHORT_ERROR:
            return obj.error or "—"
        return format_html('<span title="{}">{}…</span>', obj.error, obj.error[: SHORT_ERROR - 1])

    @admin.display(description="Request headers")
    def request_headers_pretty(self, obj: WebhookLog):
        # As logged: custom headers with secret names were masked before they were stored.
        return _pre(_pretty_json(obj.request_headers))

    @admin.display(description="Request body")
    def request_body(self, obj: WebhookLog):
        """The bytes every attempt of this event sends (the event's body), indented for reading."""
        event = obj.delivery.event
        body = event_body(event)
        try:
            sent = json.loads(body)
        except ValueError:
            return _pre(body.decode(errors="replace"))
        # Values the event type's schema marks sensitive are masked (webhooks/masking.py).
        return _pre(_pretty_json({**sent, "data": masked_payload(event)}))

    @admin.display(description="Response body")
    def response_body_pretty(self, obj: WebhookLog):
        if not obj.response_body:
            return "—" if obj.response_status is None else "(empty)"
        body = masked_response_body(obj)
        try:
            text = _pretty_json(json.loads(body))
        except ValueError:
            text = body
        return _pre(text)

    def has_replay_permission(self, request) -> bool:
        """Replaying sends, so it needs what changing a webhook needs (the `admin` role)."""
        return request.user.has_perm("webhooks.change_webhook") and self._may_write(request, None)

    @admin.action(description="Replay: send these attempts' events again now (same webhook-id)", permissions=["replay"])
    def replay(self, request, queryset):
        deliveries = list(queryset.order_by().values_list("delivery_id", flat=True).distinct()[: REPLAY_LIMIT + 1])
        if len(deliveries) > REPLAY_LIMIT:
            self.message_user(
                request,
                f"Select at most {count_of(REPLAY_LIMIT, 'delivery')} to replay at once: each is sent now, while "
                "the page waits. To re-send many failed deliveries, use the webhook's "
                "“Re-send failed deliveries” action.",
                messages.ERROR,
            )
            return
        # One replay per delivery (the same event to the same webhook), from its latest selected attempt.
        latest: dict = {}
        for log in queryset.filter(delivery_id__in=deliveries).select_related("webhook").order_by("created_at"):
            latest[log.delivery_id] = log
        for log in sorted(latest.values(), key=lambda log: log.created_at):
            self._replay_one(request, log)

    def _replay_one(self, request, log: WebhookLog) -> WebhookLog | None:
        """Replay one attempt (webhooks.services.log_replay) and say how it went."""
        label = f"{log.webhook.name}: {log.event_type} ({log.message_id})"
        try:
            sent = log_replay(log=log)
        except ApplicationError as error:
            self.message_user(request, f"{label} not replayed: {error.message}", messages.ERROR)
            return None
        outcome = f"HTTP {sent.response_status}" if sent.response_status else sent.error
        url = reverse("admin:webhooks_webhooklog_change", args=[sent.pk])
        self.message_user(
            request,
            format_html(
                '{} replayed: {} in {} ms (<a href="{}">the new attempt</a>).',
                label,
                outcome,
                f"{sent.duration_ms:.0f}",
                url,
            ),
            messages.SUCCESS if sent.success else messages.ERROR,
        )
        return sent

    def get_urls(self):
        replay = path(
            "<uuid:log_id>/replay/",
            self.admin_site.admin_view(self.replay_view),
            name="webhooks_webhooklog_replay",
        )
        return [replay, *super().get_urls()]

    def replay_view(self, request, log_id):
        """The log page's "Replay" button: a POST (with the CSRF token), then the new attempt's page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        log = self.get_object(request, str(log_id))
        if log is None:
            raise Http404("No such attempt.")
        if not (self.has_replay_permission(request) and self._may_write(request, log)):
            raise PermissionDenied
        sent = self._replay_one(request, log)
        return HttpResponseRedirect(reverse("admin:webhooks_webhooklog_change", args=[(sent or log).pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        if self.has_replay_permission(request):
            try:
                context["replay_url"] = reverse("admin:webhooks_webhooklog_replay", args=[uuid.UUID(object_id)])
            except ValueError:
                pass  # not an id: the admin answers "not found" as usual
        return super().change_view(request, object_id, form_url, extra_context=context)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "message_id",
        "webhook",
        "event",
        "state",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["state", "organization"]
    list_select_related = ["webhook", "event"]
    search_fields = ["id", "webhook__name"]
    exclude = ["lease_token"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["type", "organization", "idempotency_key", "created_at"]
    list_filter = ["type", "organization"]
    list_select_related = ["organization"]
    search_fields = ["id", "idempotency_key"]
    date_hierarchy = "created_at"
    exclude = ["payload"]
    readonly_fields = ["payload_masked"]

    @admin.display(description="Payload")
    def payload_masked(self, obj: Event):
        """The payload with the values its schema marks sensitive masked."""
        return _pre(_pretty_json(masked_payload(obj)))
