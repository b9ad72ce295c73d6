from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from organizations.models import Organization

from .models import ConnectionIssue, Integration

#: the attribute `integration_list` prefetches the open connection issues into
OPEN_ISSUES_ATTR = "open_connection_issues"


def integration_list(*, organization: Organization, provider: str | None = None) -> QuerySet[Integration]:
    """The organization's integrations (never another's), with what list views render
    (their open connection issues in `open_connection_issues`)."""
    open_issues = ConnectionIssue.objects.filter(status=ConnectionIssue.Status.OPEN).order_by("kind")
    queryset = (
        Integration.objects.filter(organization=organization)
        .select_related("organization")
        .prefetch_related(Prefetch("connection_issues", queryset=open_issues, to_attr=OPEN_ISSUES_ATTR))
    )
    if provider is not None:
        queryset = queryset.filter(provider=provider)
    return queryset


def integration_get(*, organization: Organization, integration_id) -> Integration | None:
    return integration_list(organization=organization).filter(pk=integration_id).first()


def connection_issue_list(
    *, organization: Organization, integration: Integration | None = None
) -> QuerySet[ConnectionIssue]:
    """The organization's connection issues that were ever opened (pending ones are not
    issues yet), newest first, with their integration."""
    queryset = (
        ConnectionIssue.objects.filter(organization=organization)
        .exclude(status=ConnectionIssue.Status.PENDING)
        .select_related("integration")
        .order_by("-opened_at", "-id")
    )
    if integration is not None:
        queryset = queryset.filter(integration=integration)
    return queryset
