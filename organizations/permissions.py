from rest_framework import exceptions, permissions

from .access import resolve_access


class IsOrganizationMember(permissions.BasePermission):
    """Authenticated for an organization; writes need a writable key or an admin role."""

    message = "This API key or role is read-only."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        access = resolve_access(request)
        if request.method in permissions.SAFE_METHODS:
            return True
        return access.can_write
