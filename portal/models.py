from __future__ import annotations

import uuid

from django.db import models

from organizations.models import Organization


class PortalLink(models.Model):
    """One signed portal link: its `jti` is consumed once, with a conditional UPDATE."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        VIEWER = "viewer", "Viewer"

    jti = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="portal_links")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.organization} {self.role} link {self.jti}"
