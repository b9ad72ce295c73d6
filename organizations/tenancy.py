"""The one way every viewset scopes its data to the request's organization.

`OrganizationScopedMixin.get_queryset()` only ever returns the organization's rows, so
another organization's object is a 404 (never a 403) and never appears in a list.
Viewsets implement `scoped_queryset(organization)` with a selector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import serializers

from organizations.access import request_organization
from organizations.models import Organization

if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView

    _Base = GenericAPIView
else:
    _Base = object


class OrganizationScopedMixin(_Base):
    queryset: QuerySet[Any]

    def scoped_queryset(self, organization: Organization) -> QuerySet:
        return self.queryset.filter(organization=organization)

    @property
    def organization(self) -> Organization:
        return request_organization(self.request)

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return self.queryset.none()
        return self.scoped_queryset(self.organization)

    def get_object(self):
        try:
            return super().get_object()
        except (ValidationError, ValueError, TypeError):  # malformed id: not found
            raise Http404 from None


class OrganizationScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A related field that only accepts objects of the request's organization."""

    def get_queryset(self):
        request = self.context.get("request")
        queryset = super().get_queryset()
        assert queryset is not None, "declare the field with queryset="
        if request is None:
            return queryset.none()
        return queryset.filter(organization=request_organization(request))

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except (ValidationError, ValueError):
            self.fail("does_not_exist", pk_value=data)
