"""Connection issues in the API: `GET /api/integrations/{id}/issues/` (views.py) and
`GET /api/integration-issues/` across the organization. Read-only: issues are opened and
resolved by the detectors' rules (integrations/issues.py); pending rows are not issues yet."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from common.api import serializers as api
from integrations.models import ConnectionIssue
from integrations.providers import PROVIDER_CHOICES
from integrations.selectors import connection_issue_list
from organizations.tenancy import OrganizationScopedMixin

#: what a client may ask for: pending rows are never listed
LISTED_STATUSES = [
    (ConnectionIssue.Status.OPEN.value, ConnectionIssue.Status.OPEN.label),
    (ConnectionIssue.Status.RESOLVED.value, ConnectionIssue.Status.RESOLVED.label),
]


class IssueIntegrationSerializer(api.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    provider = serializers.CharField()


class ConnectionIssueSerializer(api.ModelSerializer):
    integration = IssueIntegrationSerializer(read_only=True)
    status = serializers.ChoiceField(choices=LISTED_STATUSES, read_only=True)
    details = serializers.JSONField(
        read_only=True,
        help_text="Facts for programs: `reconnect_url`, `consent_url`, `missing_scopes`, `retry_after`...",
    )
    count = serializers.IntegerField(read_only=True, help_text="Detections while the issue was active.")

    class Meta:
        model = ConnectionIssue
        fields = [
            "id",
            "integration",
            "kind",
            "status",
            "message",
            "details",
            "count",
            "first_seen_at",
            "last_seen_at",
            "opened_at",
            "resolved_at",
        ]
        read_only_fields = fields


class OpenIssuesSerializer(api.Serializer):
    """An integration's open issues, in its representation."""

    count = serializers.IntegerField()
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=ConnectionIssue.Kind.choices))


def open_issues_summary(issues: list[ConnectionIssue]) -> dict:
    return {"count": len(issues), "kinds": sorted({issue.kind for issue in issues})}


class IssueQuerySerializer(api.Serializer):
    extra_allowed_keys = api.PAGINATION_KEYS

    """`GET /api/integrations/{id}/issues/`: `?status=open|resolved` (default both)."""

    status = serializers.ChoiceField(
        choices=LISTED_STATUSES, required=False, allow_blank=True, help_text="open or resolved; default both"
    )


class ConnectionIssueFilter(django_filters.FilterSet):
    """`GET /api/integration-issues/`: `?status=open|resolved`, `?kind=`, `?provider=`, `?integration=<id>`."""

    status = django_filters.ChoiceFilter(choices=LISTED_STATUSES)
    kind = django_filters.ChoiceFilter(choices=ConnectionIssue.Kind.choices)
    provider = django_filters.ChoiceFilter(field_name="integration__provider", choices=PROVIDER_CHOICES)
    # A plain UUID (no existence check): another organization's id simply matches nothing.
    integration = django_filters.UUIDFilter(field_name="integration_id")

    class Meta:
        model = ConnectionIssue
        fields = ["status", "kind", "provider", "integration"]


@extend_schema_view(
    list=extend_schema(summary="This organization's connection issues, newest first"),
    retrieve=extend_schema(summary="One connection issue"),
)
class ConnectionIssueViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Connection issues of every integration of the organization (read-only)."""

    queryset = ConnectionIssue.objects.all()
    serializer_class = ConnectionIssueSerializer
    filterset_class = ConnectionIssueFilter

    def scoped_queryset(self, organization):
        return connection_issue_list(organization=organization)
