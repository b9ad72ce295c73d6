from __future__ import annotations

import hmac

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .models import ApiKey, Membership, Organization
from .services import hash_api_key, split_api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None. The hash comparison is constant-time."""
    prefix = split_api_key(raw_key)
    if prefix is None:
        return None
    api_key = ApiKey.objects.select_related("organization").filter(prefix=prefix).first()
    candidate = hash_api_key(raw_key)
    stored = api_key.hashed_key if api_key else "0" * 64
    if not hmac.compare_digest(candidate, stored) or api_key is None or api_key.revoked_at is not None:
        return None
    return api_key


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(organization=organization)


def membership_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Membership]:
    if isinstance(user, AnonymousUser):
        return Membership.objects.none()
    return Membership.objects.filter(user_id=user.pk).select_related("organization")
