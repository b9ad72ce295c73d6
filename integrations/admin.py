import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from common.admin import GREY, colour_badge
from common.exceptions import ApplicationError
from common.fields import is_readable
from common.text import count_of
from organizations.admin_scoping import OrganizationScopedAdmin

from .admin_issues import IntegrationIssuesAdminMixin
from .grants import consent_url
from .models import UNREADABLE_CREDENTIALS, Integration
from .oauth.binding import set_binding_cookie
from .oauth.flows import hash_state, oauth_start_authorization
from .oauth.tokens import oauth_refresh_token
from .services import integration_activate, integration_create, integration_deactivate, integration_update
from .validation import (
    IntegrationInvalid,
    validate_config,
    validate_credentials,
    validate_provider_and_auth_type,
)

STATUS_COLOURS = {
    Integration.Status.ACTIVE: "#1a7f37",
    Integration.Status.PENDING: "#9a6700",
    Integration.Status.INACTIVE: "#57606a",
    Integration.Status.ERROR: "#cf222e",
    Integration.HealthStatus.HEALTHY: "#1a7f37",
    Integration.HealthStatus.DEGRADED: "#9a6700",
    Integration.HealthStatus.UNHEALTHY: "#cf222e",
    Integration.HealthStatus.UNKNOWN: "#57606a",
}


def badge(value: str, label: str):
    return colour_badge(label, STATUS_COLOURS.get(value, GREY))


def health_label(integration: Integration) -> str:
    """`unknown` health says why: never connected (pending), or connected but not checked yet."""
    if integration.health_status != Integration.HealthStatus.UNKNOWN:
        return integration.get_health_status_display()
    return "Not connected" if integration.status == Integration.Status.PENDING else "Not checked yet"


class IntegrationAdminForm(forms.ModelForm):
    """The stored credentials are never rendered: `new_credentials` is a password input
    that replaces them when filled and keeps them when left blank."""

    new_credentials = forms.CharField(
        label="Credentials",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 80}),
        help_text=(
            'A JSON object, e.g. {"api_key": "…"}. Leave blank to keep the stored credentials; '
            "what you enter replaces them (OAuth tokens are kept). Never shown again."
        ),
    )

    class Meta:
        model = Integration
        fields = ["organization", "name", "provider", "auth_type", "config"]

    def clean_new_credentials(self):
        raw = self.cleaned_data.get("new_credentials") or ""
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Not valid JSON (the value is not shown again).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        credentials = cleaned.get("new_credentials")
        try:
            provider = validate_provider_and_auth_type(cleaned.get("provider"), cleaned.get("auth_type"))
            config = validate_config(provider, cleaned["auth_type"], cleaned.get("config") or {})
            stored = self.instance.credentials if self.instance.pk else {}
            if not is_readable(stored):
                if not credentials:
                    self.add_error("new_credentials", UNREADABLE_CREDENTIALS)
                    return cleaned
                stored = {}
            validate_credentials(provider, cleaned["auth_type"], credentials or stored or {}, config=config)
        except IntegrationInvalid as error:
            for field, problems in error.errors.items():
                target = field if field in {"provider", "auth_type", "config", "name"} else None
                text = json.dumps(problems) if isinstance(problems, dict) else "; ".join(map(str, problems))
                self.add_error(target if target else "new_credentials", f"{field}: {text}" if not target else text)
        return cleaned


@admin.register(Integration)
class IntegrationAdmin(IntegrationIssuesAdminMixin, OrganizationScopedAdmin, admin.ModelAdmin):
    form = IntegrationAdminForm
    list_display = [
        "name",
        "organization",
        "provider",
        "auth_type",
        "status_badge",
        "health_badge",
        "issues_badge",
        "token_expires_at",
        "last_sync_at",
        "updated_at",
    ]
    list_filter = ["provider", "status", "health_status", "auth_type", "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "provider", "organization__slug", "organization__name", "last_error"]
    state_fields = [
        "status_badge",
        "health_badge",
        "issues_badge",
        "needs_reauthorization",
        "token_expires_at",
        *IntegrationIssuesAdminMixin.lifecycle_fields,
        "refresh_retry_at",
        "last_sync_at",
        "last_error",
        "last_error_at",
        "last_health_check_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = [
        "id",
        "stored_credential_fields",
        "oauth_authorization",
        "minted_token",
        *state_fields,
        "usage_chart",
    ]
    actions = ["activate", "deactivate"]

    def get_fieldsets(self, request, obj=None):
        main = ["organization", "name", "provider", "auth_type", "config", "new_credentials"]
        if obj is None:
            return [(None, {"fields": main})]
        return [
            (None, {"fields": ["id", *main, "stored_credential_fields", "oauth_authorization", "minted_token"]}),
            (
                "State",
                {"fields": self.state_fields},
            ),
            ("Usage", {"fields": ["usage_chart"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Integration):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Health", ordering="health_status")
    def health_badge(self, obj: Integration):
        return badge(obj.health_status, health_label(obj))

    @admin.display(description="Stored credential keys")
    def stored_credential_fields(self, obj: Integration) -> str:
        if not obj.credentials_readable:
            return UNREADABLE_CREDENTIALS
        return ", ".join(obj.credential_fields) or "—"

    @admin.display(description="OAuth authorization")
    def oauth_authorization(self, obj: Integration):
        if obj.pk is None or obj.auth_type != Integration.AuthType.OAUTH2:
            return "—"
        url = reverse("admin:integrations_integration_authorize", args=[obj.pk])
        authorized = obj.credentials_readable and obj.credentials.get("access_token")
        label = "Re-authorize" if authorized else "Authorize"
        # A POST with the change form's CSRF token (no nested form: the button overrides the
        # form's action). A GET, e.g. an <img> on another site, cannot start a flow.
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" formnovalidate>{} with {}</button>'
            " — you will return to a page that links back here.",
            url,
            label,
            obj.provider_info.display_name if obj.provider_info else obj.provider,
        )

    @admin.display(description="JWT bearer grant")
    def minted_token(self, obj: Integration):
        if obj.pk is None or obj.auth_type != Integration.AuthType.JWT:
            return "—"
        mint_url = reverse("admin:integrations_integration_mint", args=[obj.pk])
        button = format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" formnovalidate>'
            "Mint a token now</button>",
            mint_url,
        )
        consent = consent_url(obj)
        if not consent:
            return button
        return format_html(
            'Consent: <a href="{}" target="_blank" rel="noopener noreferrer">{}</a> — open it signed in as the '
            "impersonated user (or an administrator granting it for the organization) and allow access, then {}",
            consent,
            consent,
            button,
        )

    @admin.display(description="Provider calls, last 24 h")
    def usage_chart(self, obj: Integration):
        """Calls per hour as an inline SVG bar chart, errors in red (no script, no CDN)."""
        if obj.pk is None:
            return "—"
        from .usage import recent_hourly

        hours = recent_hourly(integration=obj)
        peak = max([hour["calls"] for hour in hours] + [1])
        width, height, bar = 12, 60, 10
        bars = format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="#0969da">'
            "<title>{}: {} call(s), {} error(s)</title></rect>"
            '<rect x="{}" y="{}" width="{}" height="{}" fill="#cf222e"/>',
            (
                (
                    index * width,
                    height - round(height * hour["calls"] / peak),
                    bar,
                    round(height * hour["calls"] / peak),
                    hour["start"].strftime("%Y-%m-%d %H:00 UTC"),
                    hour["calls"],
                    hour["errors"],
                    index * width,
                    height - round(height * hour["errors"] / peak),
                    bar,
                    round(height * hour["errors"] / peak),
                )
                for index, hour in enumerate(hours)
            ),
        )
        total = sum(hour["calls"] for hour in hours)
        errors = sum(hour["errors"] for hour in hours)
        return format_html(
            '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{}" height="{}" '
            'aria-label="provider calls per hour">{}</svg><div>{} call(s), {} error(s); peak {} per hour. '
            "Details: GET /api/integrations/{}/usage/</div>",
            width * len(hours),
            height,
            bars,
            total,
            errors,
            peak if total else 0,
            obj.pk,
        )

    def get_urls(self):
        custom = [
            path(
                "<uuid:integration_id>/authorize/",
                self.admin_site.admin_view(self.authorize_view),
                name="integrations_integration_authorize",
            ),
            path(
                "<uuid:integration_id>/mint/",
                self.admin_site.admin_view(self.mint_view),
                name="integrations_integration_mint",
            ),
        ]
        return custom + super().get_urls()

    def mint_view(self, request, integration_id):
        """Mint a token now (after granting consent or delegation): the forced refresh."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = get_object_or_404(Integration, pk=integration_id)
        if not self.has_change_permission(request, integration):
            return HttpResponseRedirect(reverse("admin:index"))
        try:
            minted = oauth_refresh_token(integration=integration, force=True)
        except ApplicationError as error:
            self.message_user(request, f"No token minted: {error.message}", messages.ERROR)
        else:
            expires = minted.token_expires_at.isoformat(timespec="seconds") if minted.token_expires_at else "never"
            self.message_user(request, f"Token minted; it expires {expires}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:integrations_integration_change", args=[integration.pk]))

    def authorize_view(self, request, integration_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = get_object_or_404(Integration, pk=integration_id)
        if not self.has_change_permission(request, integration):
            return HttpResponseRedirect(reverse("admin:index"))
        change_url = reverse("admin:integrations_integration_change", args=[integration.pk])
        try:
            start = oauth_start_authorization(integration=integration, bind_browser=True)
        except ApplicationError as error:
            self.message_user(request, f"Cannot start authorization: {error.message}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        response = HttpResponseRedirect(start.authorization_url)
        set_binding_cookie(response, request, state_hash=hash_state(start.state), secret=start.binding)
        return response

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            # Only what the operator changed, through the service (locked row, named fields):
            # never a full save() of the form's copy over token and health state.
            changed = {name: data[name] for name in ("name", "provider", "auth_type") if name in form.changed_data}
            if "config" in form.changed_data:
                changed["config"] = data.get("config") or {}
            saved = integration_update(integration=obj, credentials=data.get("new_credentials"), **changed)
        else:
            saved = integration_create(
                organization=data["organization"],
                name=data["name"],
                provider=data["provider"],
                auth_type=data["auth_type"],
                config=data.get("config") or {},
                credentials=data.get("new_credentials") or {},
            )
        form.instance = saved
        obj.pk = saved.pk

    @admin.action(description="Activate selected integrations")
    def activate(self, request, queryset):
        done, failed = 0, []
        for integration in queryset:
            try:
                integration_activate(integration=integration)
                done += 1
            except ApplicationError as error:
                failed.append(f"{integration.name}: {error.message}")
        self.message_user(request, f"Activated {count_of(done, 'integration')}.", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.WARNING)

    @admin.action(description="Deactivate selected integrations")
    def deactivate(self, request, queryset):
        count = 0
        for integration in queryset:
            integration_deactivate(integration=integration)
            count += 1
        self.message_user(request, f"Deactivated {count_of(count, 'integration')}.", messages.SUCCESS)
