"""Portal links: signed, single-use, expiring URLs scoped to one organization and role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from organizations.models import Organization

from .models import PortalLink

SALT = "portal.link"
DEFAULT_EXPIRES_IN = 900
MAX_EXPIRES_IN = 3600


class LinkRefused(Exception):
    """The link can't open a session; `reason` is one of: invalid, expired, used."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CreatedLink:
    url: str
    expires_at: datetime


def portal_link_create(*, organization: Organization, role: str, expires_in: int = DEFAULT_EXPIRES_IN) -> CreatedLink:
    link = PortalLink.objects.create(
        organization=organization, role=role, expires_at=timezone.now() + timedelta(seconds=expires_in)
    )
    token = signing.dumps({"jti": str(link.jti)}, salt=SALT)
    return CreatedLink(url=f"{settings.PUBLIC_BASE_URL}/portal/links/{token}/", expires_at=link.expires_at)


def portal_link_consume(*, token: str) -> PortalLink:
    """The link's row, marked used; only one of concurrent openers wins (conditional UPDATE)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_EXPIRES_IN)
        jti = uuid.UUID(str(data["jti"]))
    except signing.SignatureExpired:
        raise LinkRefused("expired") from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkRefused("invalid") from None
    now = timezone.now()
    won = PortalLink.objects.filter(jti=jti, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    link = PortalLink.objects.select_related("organization").filter(jti=jti).first()
    if link is None:
        raise LinkRefused("invalid")
    if won != 1:
        raise LinkRefused("used" if link.used_at is not None else "expired")
    return link
