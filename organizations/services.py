from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from common.exceptions import ApplicationError, ConflictError
from common.services import model_update
from common.text import quoted

from .models import ApiKey, Membership, Organization

KEY_PREFIX = "ik"
#: prefixes are `secrets.token_hex(4)`; anything else is not one of our keys
PREFIX_PATTERN = re.compile(r"[0-9a-f]{8}")
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_api_key(raw_key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (as for GitHub tokens).
    return hashlib.sha256(raw_key.encode()).hexdigest()


def split_api_key(raw_key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not PREFIX_PATTERN.fullmatch(parts[1]) or not parts[2]:
        return None
    return parts[1]


@transaction.atomic
def organization_create(*, slug: str, name: str = "") -> Organization:
    if not slug or slugify(slug) != slug:
        raise ApplicationError(f"Invalid slug {quoted(slug)}: use lowercase letters, digits and hyphens.")
    if Organization.objects.filter(slug=slug).exists():
        raise ConflictError(f"Organization {quoted(slug)} already exists.")
    return Organization.objects.create(slug=slug, name=name or slug)


@transaction.atomic
def membership_set(*, user: AbstractBaseUser, organization: Organization, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {quoted(role)}.")
    membership, _ = Membership.objects.update_or_create(user=user, organization=organization, defaults={"role": role})
    return membership


def api_key_save_new(*, api_key: ApiKey) -> str:
    """Give an unsaved key its secret and save it; returns the raw key, never stored."""
    for _ in range(5):
        api_key.prefix = secrets.token_hex(4)
        raw_key = f"{KEY_PREFIX}_{api_key.prefix}_{secrets.token_urlsafe(32)}"
        api_key.hashed_key = hash_api_key(raw_key)
        try:
            with transaction.atomic():
                api_key.save(force_insert=True)
        except IntegrityError:  # prefix collision: draw again
            continue
        return raw_key
    raise ApplicationError("Could not allocate a unique key prefix; try again.")


def api_key_create(*, organization: Organization, name: str, read_only: bool = False) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again."""
    api_key = ApiKey(organization=organization, name=name or "API key", read_only=read_only)
    raw_key = api_key_save_new(api_key=api_key)
    return api_key, raw_key


@transaction.atomic
def api_key_update(*, api_key: ApiKey, name: str | None = None, read_only: bool | None = None) -> ApiKey:
    """Change the given fields (None keeps a value), on the locked row: `last_used_at` and
    `revoked_at` are written by authentication and revocation, never from this copy."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    data = {name_: value for name_, value in (("name", name), ("read_only", read_only)) if value is not None}
    model_update(instance=locked, fields=["name", "read_only"], data=data)
    for attname in ("name", "read_only", "last_used_at", "revoked_at"):
        setattr(api_key, attname, getattr(locked, attname))
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke once: a second revocation (or a stale copy) keeps the first time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.revoked_at = ApiKey.objects.values_list("revoked_at", flat=True).get(pk=api_key.pk)
    return api_key


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key, so reads do not become writes. The UPDATE is
    conditional: when several workers see the same stale time at once, one of them writes."""
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
