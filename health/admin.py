from django.contrib import admin, messages
from django.db.models import Prefetch
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from common.exceptions import ApplicationError
from common.text import count_of
from integrations.admin import IntegrationAdmin, badge
from integrations.models import Integration
from organizations.admin_scoping import OrganizationScopedAdmin

from .models import ClusterHeartbeat, HealthCheck
from .services import health_check_now, health_run

STRIP_LENGTH = 24
STRIP_COLOURS = {
    HealthCheck.Status.HEALTHY: "#1a7f37",
    HealthCheck.Status.DEGRADED: "#d4a72c",
    HealthCheck.Status.UNHEALTHY: "#cf222e",
}


def uptime_strip(checks) -> str:
    """Small coloured blocks, oldest left, one per check; a tooltip gives time, status and ms."""
    checks = list(checks)[:STRIP_LENGTH][::-1]
    if not checks:
        return "—"
    blocks = format_html_join(
        "",
        '<span title="{}" style="display:inline-block;width:6px;height:14px;margin-right:1px;background:{}"></span>',
        (
            (
                f"{c.checked_at:%Y-%m-%d %H:%M} {c.status}"
                + (f" {c.response_time_ms} ms" if c.response_time_ms is not None else ""),
                STRIP_COLOURS.get(c.status, "#57606a"),
            )
            for c in checks
        ),
    )
    return format_html('<span style="white-space:nowrap">{}</span>', blocks)


class RecentChecksFormSet(BaseInlineFormSet):
    def get_queryset(self):
        return super().get_queryset()[:20]


class HealthCheckInline(admin.TabularInline):
    model = HealthCheck
    formset = RecentChecksFormSet
    verbose_name_plural = "Health history (latest 20)"
    # Rows without the check's repr (the template leaves it out); the time links to the check.
    template = "admin/health/history_tabular.html"
    fields = [
        "checked",
        "status_badge",
        "response_time_ms",
        "http_status",
        "consecutive_unhealthy",
        "transition",
        "error",
    ]
    readonly_fields = fields
    ordering = ["-checked_at", "-id"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="Checked at")
    def checked(self, obj: HealthCheck):
        url = reverse("admin:health_healthcheck_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, f"{obj.checked_at:%Y-%m-%d %H:%M:%S}")

    @admin.display(description="Status")
    def status_badge(self, obj: HealthCheck):
        return badge(obj.status, obj.get_status_display())

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The integrations admin, extended from here with health (history inline, uptime, check now),
# so the integrations app does not depend on the health app.
admin.site.unregister(Integration)


@admin.register(Integration)
class MonitoredIntegrationAdmin(IntegrationAdmin):
    inlines = [*IntegrationAdmin.inlines, HealthCheckInline]
    list_display = [*IntegrationAdmin.list_display]
    list_display.insert(list_display.index("health_badge") + 1, "uptime")
    readonly_fields = [*IntegrationAdmin.readonly_fields, "uptime", "check_health_button"]
    actions = [*IntegrationAdmin.actions, "check_now"]

    def get_inlines(self, request, obj):
        # The history inline is read-only: nothing of it is ever submitted, so a POST of the
        # form is handled without it (no management form required from the client).
        inlines = super().get_inlines(request, obj)
        if obj is None:  # nothing has been checked yet: no empty history table on the add form
            return [inline for inline in inlines if inline is not HealthCheckInline]
        if request.method == "POST":
            return [inline for inline in inlines if inline is not HealthCheckInline]
        return inlines

    def get_queryset(self, request):
        recent = HealthCheck.objects.order_by("-checked_at", "-id")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("health_checks", queryset=recent[:STRIP_LENGTH], to_attr="recent_checks"))
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None:
            for name, options in fieldsets:
                if name == "State":
                    fields = list(options["fields"])
                    fields.insert(fields.index("health_badge") + 1, "uptime")
                    if self.has_change_permission(request, obj):  # a viewer may not check
                        fields.insert(fields.index("uptime") + 1, "check_health_button")
                    options["fields"] = fields
        return fieldsets

    @admin.display(description="Recent checks")
    def uptime(self, obj: Integration):
        checks = getattr(obj, "recent_checks", None)
        if checks is None:
            checks = obj.health_checks.order_by("-checked_at", "-id")[:STRIP_LENGTH]
        return uptime_strip(checks)

    @admin.display(description="Check")
    def check_health_button(self, obj: Integration):
        if obj.pk is None:
            return "—"
        # A POST with the change form's CSRF token (the button overrides the form's action).
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" formnovalidate>'
            "Check health now</button>",
            reverse("admin:integrations_integration_check_health", args=[obj.pk]),
        )

    def get_urls(self):
        custom = [
            path(
                "<uuid:integration_id>/check-health/",
                self.admin_site.admin_view(self.check_health_view),
                name="integrations_integration_check_health",
            ),
        ]
        return custom + super().get_urls()

    def check_health_view(self, request, integration_id):
        """Check one integration now and say how it went (the change page's button)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = get_object_or_404(self.get_queryset(request), pk=integration_id)
        if not self.has_change_permission(request, integration):
            return HttpResponseRedirect(reverse("admin:index"))
        change_url = reverse("admin:integrations_integration_change", args=[integration.pk])
        try:
            record = health_check_now(integration=integration)
        except ApplicationError as error:
            self.message_user(request, f"Not checked: {error.message}", messages.WARNING)
            return HttpResponseRedirect(change_url)
        details = [f"{record.response_time_ms} ms" if record.response_time_ms is not None else ""]
        if record.http_status:
            details.append(f"HTTP {record.http_status}")
        if record.error:
            details.append(record.error.rstrip("."))
        text = f"Health check: {record.get_status_display()}" + "".join(f"; {d}" for d in details if d) + "."
        level = {
            HealthCheck.Status.HEALTHY: messages.SUCCESS,
            HealthCheck.Status.DEGRADED: messages.WARNING,
        }.get(record.status, messages.ERROR)
        self.message_user(request, text, level)
        return HttpResponseRedirect(change_url)

    @admin.action(description="Check health now")
    def check_now(self, request, queryset):
        summary = health_run(integration_ids=list(queryset.values_list("pk", flat=True)), force=True)
        if summary.checks or not summary.not_connected:
            counts = summary.counts
            text = ", ".join(f"{counts[s]} {s}" for s in HealthCheck.Status.values if counts[s]) or "nothing"
            level = messages.WARNING if summary.unhealthy else messages.SUCCESS
            self.message_user(request, f"Checked {count_of(len(summary.checks), 'integration')}: {text}.", level)
        if summary.not_connected:
            self.message_user(request, not_connected_message(summary.not_connected), messages.INFO)
        if summary.skipped:
            being = "it is" if summary.skipped == 1 else "they are"
            self.message_user(
                request,
                f"{count_of(summary.skipped, 'integration')} skipped: {being} being checked by a run right now.",
                messages.WARNING,
            )


NOT_CONNECTED_LISTED = 10


def not_connected_message(items) -> str:
    """E.g. "Not checked, not connected yet (health stays unknown): “Calendar” (never authorized…)."."""
    named = "; ".join(f"“{item.name}” ({item.reason})" for item in items[:NOT_CONNECTED_LISTED])
    more = len(items) - NOT_CONNECTED_LISTED
    rest = f"; and {count_of(more, 'other')}" if more > 0 else ""
    return f"Not checked, not connected yet (health stays unknown): {named}{rest}."


@admin.register(HealthCheck)
class HealthCheckAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    organization_lookup = "integration__organization"
    # Fits a 1366 px screen beside the navigation and the filters (streak and transition are on
    # the check's page; transition is a filter).
    list_display = [
        "checked_at",
        "integration_name",
        "organization",
        "status_badge",
        "milliseconds",
        "http",
        "short_error",
    ]
    list_filter = ["status", "transition", "checked_at", "integration__provider"]
    list_select_related = ["integration__organization"]
    search_fields = ["integration__name", "integration__organization__slug", "integration__organization__name", "error"]
    raw_id_fields = ["integration"]
    date_hierarchy = "checked_at"
    readonly_fields = [
        "integration",
        "status",
        "response_time_ms",
        "http_status",
        "error",
        "consecutive_unhealthy",
        "transition",
        "checked_at",
    ]

    @admin.display(description="Integration", ordering="integration__name")
    def integration_name(self, obj: HealthCheck) -> str:
        return obj.integration.name

    @admin.display(description="ms", ordering="response_time_ms")
    def milliseconds(self, obj: HealthCheck):
        return obj.response_time_ms

    @admin.display(description="HTTP", ordering="http_status")
    def http(self, obj: HealthCheck):
        return obj.http_status

    @admin.display(description="Organization", ordering="integration__organization__name")
    def organization(self, obj: HealthCheck) -> str:
        return obj.integration.organization.name

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: HealthCheck):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="Error")
    def short_error(self, obj: HealthCheck):
        if not obj.error:
            return None  # the admin's "-"
        # Long host names wrap anywhere rather than widen the table.
        shown = obj.error if len(obj.error) <= 40 else obj.error[:39] + "…"
        return format_html('<span title="{}" style="overflow-wrap:anywhere">{}</span>', obj.error, shown)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ClusterHeartbeat)
class ClusterHeartbeatAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    organization_lookup = None  # the cluster's, no organization's: superusers only
    list_display = ["name", "beat_at"]
    readonly_fields = ["name", "beat_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
