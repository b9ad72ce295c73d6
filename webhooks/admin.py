from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from common.admin import colour_badge
from common.exceptions import ApplicationError
from common.redaction import is_sensitive_name, mask_sensitive
from organizations.admin_scoping import OrganizationScopedAdmin

from . import selectors, services
from .engine.policy import UNREADABLE_SECRET
from .models import Delivery, Event, Webhook, WebhookLog

RECENT_ATTEMPTS = 20


class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    remove_sensitive_headers = forms.BooleanField(
        required=False,
        label="Remove the secret headers",
        help_text="Required to move the URL to another host while secret headers (e.g. Authorization) are "
        "stored: they are never sent to a host they were not entered for. Enter them again through the API.",
    )

    class Meta:
        model = Webhook
        fields = ["organization", "name", "url", "events", "retry_attempts", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # `is_active` counts as changed only against what the operator was shown: if the
        # engine disabled the webhook after the form was opened, saving a new name must not
        # re-enable it. A post without that hidden value is compared with the stored row.
        if "is_active" not in self.fields:  # a view-only page
            return
        if not self.is_bound or self.add_initial_prefix("is_active") in self.data:
            self.fields["is_active"].show_hidden_initial = True

    def clean(self):
        cleaned = super().clean()
        try:
            services.validate_webhook_fields(
                {k: cleaned[k] for k in ("url", "events", "retry_attempts") if k in cleaned}
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        if self.instance.pk and "url" in self.changed_data and cleaned.get("url"):
            try:
                services.headers_for_update(webhook=self.instance, url=cleaned["url"], headers=self.headers_to_store())
            except ValidationError as exc:
                self.add_error("remove_sensitive_headers", exc.messages)
        return cleaned

    def headers_to_store(self) -> dict[str, str] | None:
        """The headers without the secret ones when the operator asked to remove them, else None."""
        if not self.cleaned_data.get("remove_sensitive_headers"):
            return None
        if not self.instance.headers_readable:
            return {}
        return {name: value for name, value in self.instance.headers.items() if not is_sensitive_name(name)}


@admin.register(Webhook)
class WebhookAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    form = WebhookForm
    list_display = [
        "name",
        "organization",
        "url",
        "status_badge",
        "success_count",
        "failure_count",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
    ]
    list_filter = ["is_active", "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "url", "organization__slug"]
    readonly_fields = [
        "status_badge",
        "signing_secret",
        "masked_headers",
        *Webhook.STATUS_FIELDS,
        "chart",
        "recent_attempts",
    ]
    actions = ["send_test", "enable", "disable", "rotate_secret", "recover_failed"]

    def get_fieldsets(self, request, obj=None):
        main = ("organization", "name", "url", "events", "retry_attempts", "is_active")
        if obj is None:
            return [(None, {"fields": main})]
        return [
            (None, {"fields": (*main, "signing_secret", "masked_headers", "remove_sensitive_headers")}),
            (
                "Status",
                {
                    "fields": (
                        "status_badge",
                        ("success_count", "failure_count", "consecutive_failures"),
                        ("disabled_at", "disabled_reason"),
                        ("last_triggered_at", "last_success_at", "last_failure_at"),
                        ("created_at", "updated_at"),
                    )
                },
            ),
            ("Last 24 hours", {"fields": ("chart",)}),
            ("Recent attempts", {"fields": ("recent_attempts",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["organization"] if obj else [])

    @admin.display(description="Status")
    def status_badge(self, obj: Webhook):
        if obj.is_active:
            return colour_badge("active", "#2e7d32")
        return colour_badge("disabled", "#c62828")

    @admin.display(description="Signing secret")
    def signing_secret(self, obj: Webhook) -> str:
        if obj.secret_readable:
            return "Stored encrypted; shown only when created or rotated."
        return UNREADABLE_SECRET

    @admin.display(description="Headers")
    def masked_headers(self, obj: Webhook):
        if not obj.headers_readable:
            return "Stored encrypted; cannot be decrypted with FERNET_KEYS (enter them again through the API)."
        return ", ".join(f"{k}: {v}" for k, v in mask_sensitive(obj.headers).items()) or "—"

    @admin.display(description="Attempts per hour (green: success, red: failure)")
    def chart(self, obj: Webhook):
        series = selectors.webhook_hourly(webhook=obj)
        peak = max([s["successes"] + s["failures"] for s in series] + [1])
        width, height, bar = 24 * 14, 80, 12
        rects = []
        for index, point in enumerate(series):
            x = index * 14
            ok_h = round(point["successes"] / peak * height)
            fail_h = round(point["failures"] / peak * height)
            title = f"{point['hour']:%H}:00 — {point['successes']} ok, {point['failures']} failed"
            rects.append((x, height - ok_h, bar, ok_h, "#43a047", title))
            rects.append((x, height - ok_h - fail_h, bar, fail_h, "#e53935", title))
        bars = format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
            rects,
        )
        return format_html(
            '<svg width="{}" height="{}" role="img" aria-label="attempts per hour">'
            '<rect width="100%" height="100%" fill="#f5f5f5"/>{}</svg>',
            width,
            height,
            bars,
        )

    @admin.display(description="Recent attempts")
    def recent_attempts(self, obj: Webhook):
        logs = obj.logs.order_by("-created_at")[:RECENT_ATTEMPTS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{}</td></tr>",
            (
                (
                    f"{log.created_at:%Y-%m-%d %H:%M:%S}",
                    log.event_type,
                    log.attempt,
                    colour_badge("ok", "#2e7d32") if log.success else colour_badge("failed", "#c62828"),
                    log.response_status or "—",
                    f"{log.duration_ms:.1f}",
                    log.error,
                )
                for log in logs
            ),
        )
        header = mark_safe(
            "<tr><th>time</th><th>event</th><th>attempt</th><th>result</th>"
            "<th>status</th><th>duration</th><th>error</th></tr>"
        )
        return format_html("<table>{}{}</table>", header, rows) if logs else "No attempts yet."

    def save_model(self, request, obj, form, change):
        editable = ("name", "url", "events", "retry_attempts", "is_active")
        if change:
            # Only what the operator changed, through the service (it locks the row; enabling
            # and disabling follow its rules). Never a full save() of the form's instance:
            # that would write back counters and state the engine moved meanwhile.
            changed = {name: form.cleaned_data[name] for name in editable if name in form.changed_data}
            headers = form.headers_to_store()
            if headers is not None:
                changed["headers"] = headers
            services.webhook_update(webhook=obj, disabled_by="admin", **changed)
        else:
            fields = {name: form.cleaned_data[name] for name in editable}
            webhook = services.webhook_create(organization=form.cleaned_data["organization"], **fields)
            obj.pk = webhook.pk
            self.message_user(
                request,
                f"Signing secret (shown once; rotate it to get a new one): {webhook.secret}",
                messages.WARNING,
            )

    @admin.action(description="Send a test event")
    def send_test(self, request, queryset):
        for webhook in queryset:
            log = services.webhook_send_test(webhook=webhook)
            level = messages.SUCCESS if log.success else messages.ERROR
            result = f"HTTP {log.response_status}" if log.response_status else log.error
            self.message_user(request, f"{webhook.name}: {result} in {log.duration_ms:.0f} ms", level)

    @admin.action(description="Enable (resets the failure count)")
    def enable(self, request, queryset):
        for webhook in queryset:
            services.webhook_enable(webhook=webhook)
        self.message_user(request, f"Enabled {queryset.count()} webhook(s).", messages.SUCCESS)

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        for webhook in queryset.filter(is_active=True):
            services.webhook_disable(
                webhook=webhook, reason=f"Disabled by {request.user} in the admin.", disabled_by="admin"
            )
        self.message_user(request, "Disabled.", messages.SUCCESS)

    @admin.action(description="Rotate the signing secret (the old one signs 24 h more)")
    def rotate_secret(self, request, queryset):
        for webhook in queryset:
            rotated = services.webhook_rotate_secret(webhook=webhook)
            self.message_user(request, f"{webhook.name}: new secret {rotated.secret} (shown once)", messages.WARNING)

    @admin.action(description="Re-send failed deliveries of the last 7 days")
    def recover_failed(self, request, queryset):
        since = timezone.now() - timedelta(days=7)
        for webhook in queryset:
            try:
                result = services.deliveries_recover(webhook=webhook, since=since)
            except ApplicationError as exc:
                self.message_user(request, f"{webhook.name}: {exc.message}", messages.ERROR)
                continue
            self.message_user(request, f"{webhook.name}: {result.recovered} delivery(ies) queued again.")


class ReadOnlyAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookLog)
class WebhookLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "webhook",
        "event_type",
        "attempt",
        "success",
        "response_status",
        "duration_ms",
        "error",
    ]
    list_filter = ["success", "event_type", "response_status", "webhook__organization"]
    list_select_related = ["webhook"]
    search_fields = ["message_id", "webhook__name", "error"]
    date_hierarchy = "created_at"
    exclude = ["organization"]


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
