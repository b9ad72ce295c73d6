"""Who a portal request acts for: a portal-link session (organization and role from the
link, no user), or a logged-in member (organization and role from the membership)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.conf import settings
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control

from organizations.models import Membership, Organization
from organizations.selectors import membership_list

SESSION_KEY = "portal_link"  # {"organization": id, "role": ...}: a portal-only session
#: a member of several organizations: the slug of the one the portal shows (the API's
#: `X-Organization` header, for the portal's session)
ORGANIZATION_KEY = "portal_organization"


@dataclass(frozen=True)
class PortalAccess:
    organization: Organization
    role: str
    via_link: bool
    #: (slug, name) of every organization a logged-in member belongs to, for the picker
    choices: tuple[tuple[str, str], ...] = ()

    @property
    def can_write(self) -> bool:
        return self.role == Membership.Role.ADMIN


def portal_access(request) -> PortalAccess | None:
    scoped = request.session.get(SESSION_KEY)
    if scoped:
        organization = Organization.objects.filter(pk=scoped["organization"]).first()
        return PortalAccess(organization, scoped["role"], via_link=True) if organization else None
    if request.user.is_authenticated:
        memberships = list(membership_list(user=request.user).order_by("organization__name", "organization__slug"))
        if memberships:
            chosen = request.session.get(ORGANIZATION_KEY)
            membership = next((m for m in memberships if m.organization.slug == chosen), memberships[0])
            choices = tuple((m.organization.slug, m.organization.name) for m in memberships)
            return PortalAccess(membership.organization, membership.role, via_link=False, choices=choices)
    return None


def frame_headers(response):
    """CSP frame-ancestors on every portal page; X-Frame-Options relaxed only when ancestors are set."""
    ancestors = settings.PORTAL_FRAME_ANCESTORS
    response["Content-Security-Policy"] = "frame-ancestors " + (" ".join(ancestors) if ancestors else "'none'")
    if ancestors:
        response.xframe_options_exempt = True
    patch_cache_control(response, no_store=True)
    return response


def portal_view(write: bool = False):
    """Needs portal access; `write` views (and every POST) need the admin role, else a 403 page."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            access = portal_access(request)
            if access is None:
                return frame_headers(redirect(f"/portal/login/?next={request.path}"))
            request.portal = access
            if (write or request.method == "POST") and not access.can_write:
                return frame_headers(
                    render(
                        request,
                        "portal/error.html",
                        {"title": "Read-only access", "message": "Your role is viewer: you can see but not change."},
                        status=403,
                    )
                )
            return frame_headers(view(request, *args, **kwargs))

        return wrapped

    return decorate
