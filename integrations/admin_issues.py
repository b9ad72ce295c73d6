"""The admin side of connection issues (`integrations/issues.py`): the read-only issue list,
the issues badge and token lifecycle on integrations, and the reconnect page that the
`integration.reauthorization_required` event links to (docs/OAUTH.md "Reconnecting")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from common.admin import GREY, colour_badge
from common.exceptions import ApplicationError
from organizations.admin_scoping import OrganizationScopedAdmin

from . import providers
from .models import ConnectionIssue, Integration
from .oauth.tokens import MINTED_AUTH_TYPES, oauth_retry_grant
from .selectors import OPEN_ISSUES_ATTR

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _Base = ModelAdmin
else:
    _Base = object

RED = "#cf222e"
ISSUE_COLOURS = {
    ConnectionIssue.Status.OPEN: RED,
    ConnectionIssue.Status.PENDING: GREY,
    ConnectionIssue.Status.RESOLVED: "#1a7f37",
}


def open_issues_of(integration: Integration) -> list[ConnectionIssue]:
    """The integration's open issues: prefetched by the admin's queryset, else one query."""
    issues = getattr(integration, OPEN_ISSUES_ATTR, None)
    if issues is None:
        issues = list(integration.connection_issues.filter(status=ConnectionIssue.Status.OPEN).order_by("kind"))
    return issues


class IntegrationIssuesAdminMixin(_Base):
    """For IntegrationAdmin: the issues badge, token lifecycle fields, the reconnect page."""

    #: token lifecycle, read-only on the change page
    lifecycle_fields = [
        "token_refresh_attempts",
        "token_refresh_failures",
        "refresh_failure_count",
        "last_token_refresh_at",
        "next_token_refresh",
        "scopes_granted",
    ]

    def get_queryset(self, request):
        open_issues = ConnectionIssue.objects.filter(status=ConnectionIssue.Status.OPEN).order_by("kind")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("connection_issues", queryset=open_issues, to_attr=OPEN_ISSUES_ATTR))
        )

    @admin.display(description="Issues")
    def issues_badge(self, obj: Integration):
        if obj.pk is None:
            return "—"
        issues = open_issues_of(obj)
        if not issues:
            return colour_badge("No open issues", GREY)
        kinds = ", ".join(sorted({issue.get_kind_display() for issue in issues}))
        url = reverse("admin:integrations_connectionissue_changelist")
        return format_html(
            '<a href="{}?integration__exact={}&amp;status__exact=open" title="{}">{}</a>',
            url,
            obj.pk,
            "; ".join(issue.message for issue in issues),
            colour_badge(f"{len(issues)} open: {kinds}", RED),
        )

    @admin.display(description="Issues")
    def issues_count(self, obj: Integration):
        """The list's compact form of `issues_badge`: how many, the kinds on hover."""
        issues = open_issues_of(obj)
        if not issues:
            return "—"
        url = reverse("admin:integrations_connectionissue_changelist")
        return format_html(
            '<a href="{}?integration__exact={}&amp;status__exact=open" title="{}">{}</a>',
            url,
            obj.pk,
            ", ".join(sorted({issue.get_kind_display() for issue in issues})),
            colour_badge(f"{len(issues)} open", RED),
        )

    @admin.display(description="Next token refresh")
    def next_token_refresh(self, obj: Integration):
        return obj.next_token_refresh_at or "—"

    @admin.display(description="Granted scopes")
    def scopes_granted(self, obj: Integration) -> str:
        return ", ".join(obj.granted_scopes or []) or "—"

    # --- reconnecting -------------------------------------------------------------------

    def get_urls(self):
        custom = [
            path(
                "<uuid:integration_id>/reconnect/",
                self.admin_site.admin_view(self.reconnect_view),
                name="integrations_integration_reconnect",
            ),
            path(
                "<uuid:integration_id>/retry-grant/",
                self.admin_site.admin_view(self.retry_grant_view),
                name="integrations_integration_retry_grant",
            ),
        ]
        return custom + super().get_urls()

    def _writable(self, request, integration_id) -> Integration | HttpResponseRedirect:
        """The integration if this user may reconnect it: another organization's is "not
        found" (the admin's own answer), a viewer's is refused."""
        integration = self.get_queryset(request).filter(pk=integration_id).first()
        if integration is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, str(integration_id))
        if not self.has_change_permission(request, integration):
            raise PermissionDenied
        return integration

    def reconnect_view(self, request, integration_id):
        """A confirmation page: its button POSTs to the authorize view (CSRF, browser-bound
        flow). A minted grant (JWT) shows where to grant consent instead."""
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        integration = self._writable(request, integration_id)
        if isinstance(integration, HttpResponseRedirect):
            return integration
        from .grants import consent_url  # the grants import the token path

        minted = integration.auth_type in MINTED_AUTH_TYPES
        info = integration.provider_info
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reconnect {integration.name}",
            "opts": self.opts,
            "original": integration,
            "integration": integration,
            "provider_name": info.display_name if info else integration.provider,
            "issues": open_issues_of(integration),
            "oauth": integration.auth_type == providers.OAUTH2,
            "minted": minted,
            "consent_url": consent_url(integration) if minted else "",
            "authorize_url": reverse("admin:integrations_integration_authorize", args=[integration.pk]),
            "retry_url": reverse("admin:integrations_integration_retry_grant", args=[integration.pk]),
            "change_url": reverse("admin:integrations_integration_change", args=[integration.pk]),
        }
        response = TemplateResponse(request, "admin/integrations/integration/reconnect.html", context)
        response["Referrer-Policy"] = "no-referrer"
        return response

    def retry_grant_view(self, request, integration_id):
        """POST: after consent was granted, mint a token now (clears the re-authorization mark)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = self._writable(request, integration_id)
        if isinstance(integration, HttpResponseRedirect):
            return integration
        change_url = reverse("admin:integrations_integration_change", args=[integration.pk])
        if integration.auth_type not in MINTED_AUTH_TYPES:
            self.message_user(request, "Only JWT and SAML grants are retried here.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            oauth_retry_grant(integration=integration)
        except ApplicationError as error:
            self.message_user(request, f"The provider still refuses: {error.message}", messages.ERROR)
        else:
            self.message_user(request, "A new token was obtained: the integration is connected.", messages.SUCCESS)
        return HttpResponseRedirect(change_url)


@admin.register(ConnectionIssue)
class ConnectionIssueAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    """Read-only: issues are opened and resolved by the detectors' rules only."""

    list_display = [
        "kind",
        "integration",
        "organization",
        "status_badge",
        "count",
        "first_seen_at",
        "last_seen_at",
        "opened_at",
        "resolved_at",
        "short_message",
    ]
    list_filter = ["status", "kind", "integration__provider"]
    list_select_related = ["integration", "organization"]
    search_fields = ["integration__name", "organization__slug", "message"]
    date_hierarchy = "last_seen_at"
    readonly_fields = [
        "organization",
        "integration",
        "kind",
        "status",
        "message",
        "details",
        "count",
        "detected_streak",
        "clear_streak",
        "first_seen_at",
        "last_seen_at",
        "opened_at",
        "resolved_at",
    ]
    fields = readonly_fields

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ConnectionIssue):
        return colour_badge(obj.get_status_display(), ISSUE_COLOURS.get(obj.status, GREY))

    @admin.display(description="Message")
    def short_message(self, obj: ConnectionIssue) -> str:
        return obj.message if len(obj.message) <= 100 else obj.message[:99] + "…"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
