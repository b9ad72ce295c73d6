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
from organizations.models import Organization

from .admin_calendar import CalendarAdminMixin
from .admin_issues import IntegrationIssuesAdminMixin
from .admin_widgets import ConfigTextarea, WriteOnlyTextarea, error_messages
from .grants import consent_url
from .models import UNREADABLE_CREDENTIALS, Integration
from .oauth.binding import set_binding_cookie
from .oauth.flows import hash_state, oauth_start_authorization
from .oauth.tokens import oauth_refresh_token
from .services import integration_activate, integration_create, integration_deactivate, integration_update
from .validation import (
    IntegrationInvalid,
    credentials_complete,
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


def never_connected(integration: Integration) -> bool:
    """Never checked and nothing to connect with yet (no credentials, an OAuth integration
    not authorized): "not connected", not a failure."""
    if integration.health_status != Integration.HealthStatus.UNKNOWN or not integration.credentials_readable:
        return False
    credentials = integration.credentials or {}
    if integration.auth_type == Integration.AuthType.SAML:
        return False  # its metadata is config; empty credentials are normal
    return not credentials or not credentials_complete(integration.auth_type, credentials)


def health_badge_of(integration: Integration):
    """`unknown` health says why: never connected, or connected but not checked yet."""
    if never_connected(integration):
        return format_html('<span style="white-space:nowrap">{}</span>', colour_badge("Not connected", GREY))
    if integration.health_status == Integration.HealthStatus.UNKNOWN:
        return colour_badge("Not checked yet", GREY)
    return badge(integration.health_status, integration.get_health_status_display())


class OrganizationNameFilter(admin.RelatedFieldListFilter):
    """Organizations by name, only those of rows the user may see."""

    def field_choices(self, field, request, model_admin):
        visible = model_admin.get_queryset(request).values("organization_id")
        return [(org.pk, org.name) for org in Organization.objects.filter(pk__in=visible).order_by("name")]


class OrganizationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.name} ({obj.slug})"


class IntegrationAdminForm(forms.ModelForm):
    """The stored credentials are never rendered: `new_credentials` is a password input
    that replaces them when filled and keeps them when left blank."""

    new_credentials = forms.CharField(
        label="Credentials",
        required=False,
        strip=True,
        widget=WriteOnlyTextarea(
            attrs={"rows": 6, "cols": 80, "autocomplete": "off", "spellcheck": "false", "class": "vLargeTextField"}
        ),
        help_text=(
            'A JSON object, e.g. {"api_key": "…"}; a PEM key or a service-account JSON key may be '
            'pasted as is, line breaks included ({"private_key": "-----BEGIN PRIVATE KEY-----…"}). '
            "Leave blank to keep the stored credentials; what you enter replaces them (OAuth tokens "
            "are kept). Never shown again."
        ),
    )

    class Meta:
        model = Integration
        fields = ["organization", "name", "provider", "auth_type", "config"]
        field_classes = {"organization": OrganizationChoiceField}
        widgets = {"config": ConfigTextarea}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "config" in self.fields:
            widget = self.fields["config"].widget
            if isinstance(widget, ConfigTextarea):
                widget.current_provider = self.data.get("provider") or self.instance.provider or ""

    def clean_new_credentials(self):
        raw = self.cleaned_data.get("new_credentials") or ""
        if not raw:
            return None
        try:
            # strict=False: a pasted PEM keeps its line breaks inside the JSON string.
            value = json.loads(raw, strict=False)
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
                if field in {"provider", "auth_type", "config", "name"}:
                    self.add_error(field, error_messages(problems))
                elif field == "credentials":
                    self.add_error("new_credentials", error_messages(problems))
                else:
                    self.add_error("new_credentials", error_messages({field: problems}))
        return cleaned


@admin.register(Integration)
class IntegrationAdmin(CalendarAdminMixin, IntegrationIssuesAdminMixin, OrganizationScopedAdmin, admin.ModelAdmin):
    form = IntegrationAdminForm
    # Fits a 1366 px screen beside the navigation and the filters: the auth type goes under
    # the provider; token expiry, sync and update times are on the change page.
    list_display = [
        "name",
        "organization_name",
        "provider_and_auth",
        "status_badge",
        "health_badge",
        "issues_count",
    ]
    list_filter = ["provider", "status", "health_status", "auth_type", ("organization", OrganizationNameFilter)]
    list_select_related = ["organization"]
    search_fields = ["name", "provider", "organization__slug", "organization__name", "last_error"]
    state_fields = [
        "status_badge",
        "health_badge",
        "issues_badge",
        "reauthorization_mark",
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
        "organization_name",
        "stored_credential_fields",
        "oauth_authorization",
        "minted_token",
        *state_fields,
        "usage_chart",
        *CalendarAdminMixin.calendar_fields,
    ]
    actions = ["activate", "deactivate"]

    def get_fieldsets(self, request, obj=None):
        main = ["name", "provider", "auth_type", "config", "new_credentials"]
        if obj is None:
            return [(None, {"fields": ["organization", *main]})]
        return [
            (
                None,
                {
                    "fields": [
                        "id",
                        "organization_name",
                        *main,
                        "stored_credential_fields",
                        "oauth_authorization",
                        "minted_token",
                    ]
                },
            ),
            (
                "State",
                {"fields": self.state_fields},
            ),
            ("Usage", {"fields": ["usage_chart"]}),
            *self.calendar_fieldsets(obj),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    @admin.display(description="Organization", ordering="organization__name")
    def organization_name(self, obj: Integration) -> str:
        return obj.organization.name

    @admin.display(description="Provider", ordering="provider")
    def provider_and_auth(self, obj: Integration):
        provider = obj.provider_info
        return format_html(
            '{}<br><span style="color:{};font-size:11px">{}</span>',
            provider.display_name if provider else obj.provider,
            GREY,
            obj.get_auth_type_display(),
        )

    @admin.display(description="Needs reauthorization")
    def reauthorization_mark(self, obj: Integration):
        if obj.needs_reauthorization:
            return colour_badge("Yes: authorize again", STATUS_COLOURS[Integration.Status.ERROR])
        return format_html('<span style="color:{}">No</span>', GREY)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Integration):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Health", ordering="health_status")
    def health_badge(self, obj: Integration):
        return health_badge_of(obj)

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
