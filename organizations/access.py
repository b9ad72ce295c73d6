"""Which organization a request acts for, and whether it may write.

- API key: the key's organization; writes unless the key is read-only.
- Session: the user's membership, picked with `X-Organization: <slug>` when the user
  belongs to several; viewers may only read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rest_framework import exceptions

from common.logs import bind_organization
from common.text import quoted

from .models import ApiKey, Organization
from .selectors import membership_list

ORGANIZATION_HEADER = "HTTP_X_ORGANIZATION"
SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,100}")


@dataclass(frozen=True)
class OrganizationAccess:
    organization: Organization
    can_write: bool


def resolve_access(request) -> OrganizationAccess:
    cached = getattr(request, "_organization_access", None)
    if cached is not None:
        return cached
    access = _resolve(request)
    request._organization_access = access
    bind_organization(access.organization.slug)  # log lines of the request name it
    return access


def request_organization(request) -> Organization:
    return resolve_access(request).organization


def _resolve(request) -> OrganizationAccess:
    if isinstance(request.auth, ApiKey):
        return OrganizationAccess(request.auth.organization, can_write=not request.auth.read_only)
    user = request.user
    if not user or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    slug = request.META.get(ORGANIZATION_HEADER, "").strip()
    memberships = membership_list(user=user)
    if slug:
        # Only a well-formed slug reaches the database (PostgreSQL refuses e.g. NUL bytes).
        membership = memberships.filter(organization__slug=slug).first() if SLUG_PATTERN.fullmatch(slug) else None
        if membership is None:
            raise exceptions.PermissionDenied(f"You are not a member of organization {quoted(slug)}.")
    else:
        found = list(memberships[:2])
        if not found:
            raise exceptions.PermissionDenied("You are not a member of any organization.")
        if len(found) > 1:
            raise exceptions.PermissionDenied(
                "You belong to several organizations: choose one with the X-Organization header."
            )
        membership = found[0]
    return OrganizationAccess(membership.organization, can_write=membership.can_write)
