"""Who may read the OpenAPI schema and Swagger UI (`/api/schema/`, `/api/docs/`)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import BasePermission


class ApiDocsAccess(BasePermission):
    """Anyone while `API_DOCS_PUBLIC` is true; else an API key or a logged-in user (any organization)."""

    def has_permission(self, request, view) -> bool:
        if getattr(settings, "API_DOCS_PUBLIC", True):
            return True
        return bool(request.user and request.user.is_authenticated)
