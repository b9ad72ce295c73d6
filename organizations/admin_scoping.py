"""The admin's tenancy: staff who are not superusers see only their organizations' rows.

Every `ModelAdmin` of the project mixes in `OrganizationScopedAdmin`:

- lists, searches, change pages and actions cover only rows of organizations the user is a
  member of (`Membership`); another organization's object is "not found" (the admin
  redirects to its index saying it does not exist);
- changing, adding and deleting need the `admin` role in the row's organization (and the
  model permission as usual); a `viewer` membership reads only;
- foreign-key choices (an organization, an integration, ...) offer only those rows the user
  may write;
- a model that belongs to no organization (`organization_lookup = None`, e.g. cluster
  heartbeats) is for superusers only.

Superusers see and change everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet

from .models import Membership, Organization

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    _Base = ModelAdmin
else:
    _Base = object

_AUTO = "auto"


def member_organizations(user, *, write: bool = False) -> QuerySet[Organization]:
    """The organizations `user` belongs to (with `write`, those where they are an admin)."""
    memberships = Membership.objects.filter(user=user)
    if write:
        memberships = memberships.filter(role=Membership.Role.ADMIN)
    return Organization.objects.filter(pk__in=memberships.values("organization_id"))


def organization_lookup_of(model: type[Model]) -> str | None:
    """How a model reaches its organization: "pk" for Organization, else its `organization` field."""
    if model is Organization:
        return "pk"
    try:
        model._meta.get_field("organization")
    except FieldDoesNotExist:
        return None
    return "organization"


class OrganizationScopedAdmin(_Base):
    #: A lookup from the model to its Organization ("organization", "integration__organization");
    #: "auto" finds it; None: the model belongs to no organization (superusers only).
    organization_lookup: str | None = _AUTO

    def _lookup(self) -> str | None:
        if self.organization_lookup == _AUTO:
            return organization_lookup_of(self.model)
        return self.organization_lookup

    def _scope(self, queryset: QuerySet, request, *, write: bool = False) -> QuerySet:
        if request.user.is_superuser:
            return queryset
        lookup = self._lookup()
        if lookup is None:
            return queryset.none()
        return queryset.filter(**{f"{lookup}__in": member_organizations(request.user, write=write)})

    def _may_write(self, request, obj: Model | None) -> bool:
        if request.user.is_superuser:
            return True
        if self._lookup() is None:
            return False
        if obj is None:
            return member_organizations(request.user, write=True).exists()
        return self._scope(self.model._default_manager.filter(pk=obj.pk), request, write=True).exists()

    def get_queryset(self, request):
        return self._scope(super().get_queryset(request), request)

    def has_view_permission(self, request, obj=None):
        if not request.user.is_superuser and self._lookup() is None:
            return False
        return super().has_view_permission(request, obj)

    def has_module_permission(self, request):
        return super().has_module_permission(request) and (request.user.is_superuser or self._lookup() is not None)

    def has_add_permission(self, request, *args: Any):
        if not request.user.is_superuser and self.model is Organization:
            return False  # an organization nobody may then see
        return super().has_add_permission(request, *args) and self._may_write(request, None)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_write(request, obj)

    def response_action(self, request, queryset):
        # Actions change rows: only those of organizations where the user is an admin.
        return super().response_action(request, self._scope(queryset, request, write=True))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser and "queryset" not in kwargs:
            related = db_field.remote_field.model
            lookup = organization_lookup_of(related)
            if lookup is not None:
                writable = member_organizations(request.user, write=True)
                kwargs["queryset"] = related._default_manager.filter(**{f"{lookup}__in": writable})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
