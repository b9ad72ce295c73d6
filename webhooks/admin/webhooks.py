"""The webhook's admin page: the form (URL, events, headers, integration), status, the
24-hour chart, the recent attempts and the actions. Writes go through webhooks.services."""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from common.admin import colour_badge
from common.exceptions import ApplicationError
from common.redaction import REDACTED, is_sensitive_name, mask_sensitive
from common.text import count_of
from organizations.admin_scoping import OrganizationScopedAdmin

from .. import selectors, services
from ..engine.policy import UNREADABLE_SECRET
from ..models import Webhook
from ..subscriber import auth_for_reading
from .chart import render_chart

RECENT_ATTEMPTS = 20
UNREADABLE_HEADERS_HELP = (
    "The stored headers cannot be decrypted with FERNET_KEYS: put the old key back and run reencrypt_credentials, "
    "or enter them again here (leaving this empty keeps the stored ones)."
)


class HeadersField(forms.JSONField):
    """A JSON object of header names to values, shown indented, one header a line."""

    def prepare_value(self, value):
        if value is None:
            return ""
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return super().prepare_value(value)


def admin_time(value) -> str:
    """A time to the second, in the current time zone: "2026-12-02 01:13:07"."""
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}" if value else "—"


# --- subscriber controls (docs/WEBHOOKS.md): the filter and the transform are edited here;
# auth and the client certificate (secrets) only through the API, shown read-only.
SUBSCRIBER = ["filter", "transform"]
FILTER_HELP = (
    'Content filter, a JSON object, e.g. {"data.job.department": {"$in": ["engineering"]}}: an event it rejects '
    "is not delivered. Operators $eq $neq $in $nin $gt $gte $lt $lte $exists $startsWith, and $and/$or; paths are "
    "dotted into the body {type, timestamp, data}. Empty: every subscribed event."
)
TRANSFORM_HELP = "JMESPath expression over the body {type, timestamp, data}; its result is sent as data. Empty: none."


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"class": "vURLField", "style": "width:100%;max-width:48em;box-sizing:border-box"}),
    )
    headers = HeadersField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text=(
            'Custom request headers, a JSON object, e.g. {"Authorization": "Bearer …", "X-Team": "blue"}. '
            f'Values of secret headers (Authorization, *token*, *key*, *secret*, cookies) show as "{REDACTED}": '
            f'leave "{REDACTED}" to keep the stored value, type a new value to replace it, remove the line to '
            "remove the header. Stored encrypted; webhook-*, Host and Content-Length cannot be set."
        ),
    )
    filter = HeadersField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text=FILTER_HELP,
    )
    transform = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"style": "width:100%;max-width:48em;font-family:monospace"}),
        help_text=TRANSFORM_HELP,
    )
    remove_sensitive_headers = forms.BooleanField(
        required=False,
        label="Remove the secret headers",
        help_text="Needed to move the URL to another host while secret headers (e.g. Authorization) are stored, "
        "unless you type their new values above: a secret is never sent to a host it was not entered for.",
    )

    class Meta:
        model = Webhook
        fields = [
            *("organization", "name", "url", "events", "integration", "retry_attempts", "is_active"),
            *SUBSCRIBER,
            *Webhook.FLOW_FIELDS,
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: editing a saved webhook (a new one has its UUID already, so not `instance.pk`)
        self.stored = not self.instance._state.adding
        if self.stored and "headers" in self.fields:
            # Never the stored values (the admin's form would start from them): secret ones masked.
            if self.instance.headers_readable:
                self.initial["headers"] = mask_sensitive(self.instance.headers)
            else:
                self.initial["headers"] = None
                self.fields["headers"].help_text = UNREADABLE_HEADERS_HELP
        if self.stored and "integration" in self.fields:  # only the webhook's own organization's
            field = self.fields["integration"]
            field.queryset = field.queryset.filter(organization_id=self.instance.organization_id)
        # A post without the headers field (a client that never showed it) keeps them.
        self.headers_submitted = not self.is_bound or self.add_prefix("headers") in self.data
        # `is_active` counts as changed only against what the operator was shown: if the
        # engine disabled the webhook after the form was opened, saving a new name must not
        # re-enable it. A post without that hidden value is compared with the stored row.
        if "is_active" not in self.fields:  # a view-only page
            return
        if not self.is_bound or self.add_initial_prefix("is_active") in self.data:
            self.fields["is_active"].show_hidden_initial = True

    def _organization(self):
        if self.stored:
            return self.instance.organization
        return self.cleaned_data.get("organization")

    def clean(self):
        cleaned = super().clean()
        validated = ("url", "events", "retry_attempts", "integration", *SUBSCRIBER, *Webhook.FLOW_FIELDS)
        fields = {k: cleaned[k] for k in validated if k in cleaned}
        if self.headers_submitted and cleaned.get("headers") is not None:
            fields["headers"] = cleaned["headers"]
        try:
            services.validate_webhook_fields(fields, self._organization())
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        if self.errors:
            return cleaned
        url_moved = "url" in self.changed_data and cleaned.get("url")
        headers = self.headers_to_store()
        if self.stored and (url_moved or headers is not None):
            try:
                services.headers_for_update(
                    webhook=self.instance, url=cleaned["url"] if url_moved else None, headers=headers
                )
            except ValidationError as exc:
                target = "remove_sensitive_headers" if url_moved else "headers"
                self.add_error(target, exc.messages)
        return cleaned

    def headers_to_store(self) -> dict[str, str] | None:
        """The headers to save (`REDACTED` values stand for the stored ones), or None to
        keep them as they are."""
        submitted = None
        if self.headers_submitted and "headers" in self.changed_data:
            submitted = self.cleaned_data.get("headers") or {}
        if not self.cleaned_data.get("remove_sensitive_headers"):
            return submitted
        if submitted is None:
            if not self.instance.headers_readable:
                return {}
            submitted = self.instance.headers
        return {name: value for name, value in submitted.items() if not is_sensitive_name(name)}


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
        "subscriber_auth",
        "mtls_certificate",
        *Webhook.STATUS_FIELDS,
        "chart",
        "recent_attempts",
    ]
    actions = ["send_test", "enable", "disable", "rotate_secret", "recover_failed"]

    def get_fieldsets(self, request, obj=None):
        main = (
            "organization",
            "name",
            "url",
            "events",
            "integration",
            "headers",
            "retry_attempts",
            "is_active",
            *Webhook.FLOW_FIELDS,
        )
        if obj is None:
            return [(None, {"fields": main}), ("Subscriber controls", {"fields": SUBSCRIBER})]
        return [
            (None, {"fields": (*main, "remove_sensitive_headers", "signing_secret")}),
            ("Subscriber controls", {"fields": (*SUBSCRIBER, "subscriber_auth", "mtls_certificate")}),
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

    @admin.display(description="Subscriber authentication")
    def subscriber_auth(self, obj: Webhook) -> str:
        shown = auth_for_reading(obj.auth)
        if shown is None:
            return "None (set through the API: auth)."
        if shown.get("readable") is False:
            return "OAuth2 client credentials; the settings cannot be decrypted with FERNET_KEYS: enter them again."
        scope = f", scope {shown['scope']}" if shown.get("scope") else ""
        secret = "set" if shown["client_secret_set"] else "not set"
        return f"OAuth2 client credentials: {shown['token_url']}, client {shown['client_id']}{scope}; secret {secret}."

    @admin.display(description="mTLS client certificate")
    def mtls_certificate(self, obj: Webhook) -> str:
        if not obj.client_certificate_set:
            return "None (set through the API: client_certificate)."
        return f"Stored encrypted; expires {admin_time(obj.client_certificate_expires_at)}."

    @admin.display(description="Attempts per hour")
    def chart(self, obj: Webhook):
        return render_chart(selectors.webhook_hourly(webhook=obj))  # the template escapes what it shows

    @admin.display(description="Recent attempts")
    def recent_attempts(self, obj: Webhook):
        logs = list(obj.logs.order_by("-created_at")[:RECENT_ATTEMPTS])
        if not logs:
            return "No attempts yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td>' + "<td>{}</td>" * 4 + "<td>{} ms</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:webhooks_webhooklog_change", args=[log.pk]),
                    admin_time(log.created_at),
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
        header = format_html(
            "<tr><th>time ({})</th><th>event</th><th>attempt</th><th>result</th><th>status</th>"
            "<th>duration</th><th>error</th></tr>",
            timezone.get_current_timezone_name(),
        )
        everything = reverse("admin:webhooks_webhooklog_changelist") + f"?webhook={obj.pk}"
        return format_html(
            '<table>{}{}</table><p><a href="{}">All attempts of this webhook →</a></p>', header, rows, everything
        )

    def save_model(self, request, obj, form, change):
        editable = (
            *("name", "url", "events", "integration", "retry_attempts", "is_active"),
            *SUBSCRIBER,
            *Webhook.FLOW_FIELDS,
        )
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
            fields["headers"] = form.cleaned_data.get("headers") or {}
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
        count = 0
        for webhook in queryset:
            services.webhook_enable(webhook=webhook)
            count += 1
        self.message_user(request, f"Enabled {count_of(count, 'webhook')}.", messages.SUCCESS)

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        count = 0
        for webhook in queryset.filter(is_active=True):
            services.webhook_disable(
                webhook=webhook, reason=f"Disabled by {request.user} in the admin.", disabled_by="admin"
            )
            count += 1
        self.message_user(request, f"Disabled {count_of(count, 'webhook')}.", messages.SUCCESS)

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
            self.message_user(request, f"{webhook.name}: {count_of(result.recovered, 'delivery')} queued again.")
