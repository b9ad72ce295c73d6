from __future__ import annotations

from django.db.models import QuerySet

from organizations.models import Organization

from .models import Integration


def integration_list(*, organization: Organization, provider: str | None = None) -> QuerySet[Integration]:
    """The organization's integrations (never another's), with what list views render."""
    queryset = Integration.objects.filter(organization=organization).select_related("organization")
    if provider is not None:
        queryset = queryset.filter(provider=provider)
    return queryset


def integration_get(*, organization: Organization, integration_id) -> Integration | None:
    return integration_list(organization=organization).filter(pk=integration_id).first()
