"""Webhooks: validation, create, update, enable/disable, delete, secret rotation.

Custom headers read back masked (`common.redaction.mask_sensitive`); an update sending
`REDACTED` for a header keeps its stored value, except when the URL moves to another
origin: the stored sensitive values (e.g. `Authorization`) are never sent to a host they
were not entered for, so they must be re-entered or removed (`headers_for_update`).

Every write locks the row and saves only the fields it changes: the delivery engine moves
the same rows' counters and disabled state at the same time (webhooks/engine/store.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.exceptions import ApplicationError
from common.fields import is_readable
from common.redaction import REDACTED, is_sensitive_name
from common.services import model_update
from common.text import quoted
from organizations.models import Organization

from .. import app_settings
from ..events import ALL_EVENTS, is_known_event
from ..filters import validate_filter
from ..models import SubscriberToken, Webhook
from ..signing import generate_secret, secret_key_bytes
from ..subscriber import validate_auth, validate_client_certificate
from ..targets import validate_headers, validate_target_url
from ..transforms import validate_transform
from .event_types import custom_event_names
from .operational import DisabledBy, emit_webhook_disabled

logger = logging.getLogger(__name__)

MAX_RETRY_ATTEMPTS = 10
WEBHOOK_FIELDS = {"name", "url", "events", "headers", "retry_attempts", "is_active", "integration"}
# Subscriber controls (webhooks/filters.py, webhooks/transforms.py, webhooks/subscriber.py).
SUBSCRIBER_FIELDS = {"filter", "transform", "auth", "client_certificate"}
WEBHOOK_FIELDS |= SUBSCRIBER_FIELDS
# Delivery flow (docs/WEBHOOKS.md, "Flow"): per-endpoint limits and ordered delivery.
WEBHOOK_FIELDS |= set(Webhook.FLOW_FIELDS)
MAX_RATE_LIMIT = 10_000.0
MAX_CONCURRENCY = 1_000


# --- validation -------------------------------------------------------------------------


def validate_events(events: Any, organization: Organization | None = None) -> list[str]:
    """Catalogue events, `["*"]`, and the organization's own custom event types."""
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ValidationError({"events": 'A non-empty list of event types (or ["*"]).'})
    custom = custom_event_names(organization=organization) if organization is not None else set()
    unknown = [e for e in events if e != ALL_EVENTS and not is_known_event(e) and e not in custom]
    if unknown:
        raise ValidationError({"events": f"Unknown event types: {', '.join(sorted(set(unknown)))}."})
    return list(dict.fromkeys(events))


def _name_taken(name: str) -> str:
    return f"A webhook named {quoted(name)} already exists in this organization."


def validate_name(name: Any, *, organization: Organization | None, exclude_pk: Any = None) -> str:
    """Non-blank, at most the model's length, unique in the organization (like integration names)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("This field may not be blank.")
    name = name.strip()
    limit = Webhook._meta.get_field("name").max_length or 200
    if len(name) > limit:
        raise ValidationError(f"At most {limit} characters.")
    if organization is not None:
        duplicates = Webhook.objects.filter(organization=organization, name=name)
        if exclude_pk is not None:
            duplicates = duplicates.exclude(pk=exclude_pk)
        if duplicates.exists():
            raise ValidationError(_name_taken(name))
    return name


def validate_webhook_fields(
    fields: dict[str, Any], organization: Organization | None = None, *, exclude_pk: Any = None, stored_auth: Any = None
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned = dict(fields)
    if "name" in fields:
        try:
            cleaned["name"] = validate_name(fields["name"], organization=organization, exclude_pk=exclude_pk)
        except ValidationError as exc:
            errors["name"] = exc.messages
    for name, check in (
        ("url", validate_target_url),
        ("headers", lambda value: cleaned.__setitem__("headers", validate_headers(value))),
        ("events", lambda value: cleaned.__setitem__("events", validate_events(value, organization))),
    ):
        if name in fields:
            try:
                check(fields[name])
            except ValidationError as exc:
                errors[name] = exc.messages
    _validate_subscriber_fields(fields, cleaned, errors, stored_auth)
    integration = fields.get("integration")
    if integration is not None and organization is not None and integration.organization_id != organization.pk:
        errors["integration"] = ["No such integration."]
    if "retry_attempts" in fields and not 0 <= int(fields["retry_attempts"]) <= MAX_RETRY_ATTEMPTS:
        errors["retry_attempts"] = [f"Between 0 and {MAX_RETRY_ATTEMPTS}."]
    errors.update(validate_flow_fields(fields, cleaned))
    if errors:
        raise ValidationError(errors)
    return cleaned


def _validate_subscriber_fields(
    fields: dict[str, Any], cleaned: dict[str, Any], errors: dict[str, list[str]], stored_auth: Any
) -> None:
    """`filter`, `transform`, `auth` and `client_certificate` (the last sets its expiry too)."""
    checks = {
        "filter": validate_filter,
        "transform": validate_transform,
        "auth": lambda value: validate_auth(value, stored=stored_auth),
    }
    for name, check in checks.items():
        if name in fields:
            try:
                cleaned[name] = check(fields[name])
            except ValidationError as exc:
                errors[name] = exc.messages
    if "client_certificate" in fields:
        try:
            cleaned["client_certificate"], cleaned["client_certificate_expires_at"] = validate_client_certificate(
                fields["client_certificate"]
            )
        except ValidationError as exc:
            errors["client_certificate"] = exc.messages


def auth_for_url_move(*, webhook: Webhook, url: str | None, auth_given: bool) -> None:
    """Like secret headers: when the URL moves to another origin, stored OAuth2 settings are
    kept only if given again with their client_secret (the receiver gets tokens they mint)."""
    if url is None or auth_given or webhook.auth is None or url_origin(url) == url_origin(webhook.url):
        return
    raise ValidationError(
        {
            "auth": [
                "The URL moves to another host: send auth again with its client_secret, or null to remove it. "
                "Tokens are never sent to a host their settings were not entered for."
            ]
        }
    )


def validate_flow_fields(fields: dict[str, Any], cleaned: dict[str, Any]) -> dict[str, list[str]]:
    """`rate_limit`: a positive number of deliveries per second, or None; `max_concurrency`:
    a positive integer, or None; `ordered`: a boolean. Cleaned values go into `cleaned`."""
    errors: dict[str, list[str]] = {}
    if "rate_limit" in fields and fields["rate_limit"] is not None:
        value = fields["rate_limit"]
        ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= MAX_RATE_LIMIT
        if not ok or value != value:  # NaN
            errors["rate_limit"] = [f"A positive number of deliveries/s (at most {MAX_RATE_LIMIT:g}), or null."]
        else:
            cleaned["rate_limit"] = float(value)
    if "max_concurrency" in fields and fields["max_concurrency"] is not None:
        value = fields["max_concurrency"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
            errors["max_concurrency"] = [f"A positive integer (at most {MAX_CONCURRENCY}), or null."]
    if "ordered" in fields and not isinstance(fields["ordered"], bool):
        errors["ordered"] = ["true or false."]
    return errors


def validate_secret(secret: str) -> str:
    try:
        secret_key_bytes(secret)
    except ValueError as exc:
        raise ValidationError({"secret": str(exc)}) from None
    return secret


def url_origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: a header secret entered for one origin is never sent to another."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme)


def headers_for_update(*, webhook: Webhook, url: str | None = None, headers: dict[str, str] | None = None):
    """The headers an update stores, or None to leave them unchanged.

    `REDACTED` as a value keeps the stored value of that header. When `url` moves the
    webhook to another origin, each stored sensitive header must be given a new value or
    left out (removed): keeping one (by sending `REDACTED`, or by not sending `headers`)
    is a ValidationError naming `headers`.
    """
    stored = webhook.headers
    moved = url is not None and url_origin(url) != url_origin(webhook.url)
    if not is_readable(stored):
        if headers is not None and REDACTED in headers.values():
            raise ValidationError({"headers": ["The stored headers cannot be decrypted: enter their values again."]})
        if moved and headers is None:
            message = "The URL moves to another host and the stored headers cannot be decrypted: enter them again."
            raise ValidationError({"headers": [message]})
        return headers
    if headers is None:
        kept = [name for name in stored if is_sensitive_name(name)] if moved else []
        if kept:
            raise ValidationError({"headers": [_reenter_message(kept)]})
        return None
    resolved, kept = {}, []
    for name, value in headers.items():
        if value == REDACTED and name in stored:
            if moved and is_sensitive_name(name):
                kept.append(name)
            resolved[name] = stored[name]
        else:
            resolved[name] = value
    if kept:
        raise ValidationError({"headers": [_reenter_message(kept)]})
    return resolved


def _reenter_message(names: list[str]) -> str:
    return (
        f"The URL moves to another host: enter the values of {', '.join(sorted(names))} again, or remove "
        "them. Stored secret header values are never sent to a host they were not entered for."
    )


# --- webhooks ---------------------------------------------------------------------------


@transaction.atomic
def webhook_create(*, organization: Organization, secret: str | None = None, **fields: Any) -> Webhook:
    unknown = set(fields) - WEBHOOK_FIELDS
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    cleaned = validate_webhook_fields(fields, organization)
    webhook = Webhook(
        organization=organization,
        secret=validate_secret(secret) if secret else generate_secret(),
        **cleaned,
    )
    if webhook.is_active is False:
        webhook.disabled_at = timezone.now()
        webhook.disabled_reason = "Created disabled."
    try:
        with transaction.atomic():
            webhook.save()
    except IntegrityError:  # a concurrent writer took the name (webhook_unique_name_per_organization)
        raise ValidationError({"name": _name_taken(webhook.name)}) from None
    return webhook


# The engine owns the counters, `consecutive_failures`, the `last_*` times, and the
# `is_active`/`disabled_*` it sets itself (webhooks/engine/store.py moves them with F() and
# conditional UPDATEs). These services therefore write only the fields they change, on
# the row they locked and re-read: never a whole instance read earlier.
_UNLOCKED_SECRETS = ("secret", "previous_secret", "auth", "client_certificate")  # not decrypted just to lock the row


def lock_webhook(webhook: Webhook) -> Webhook:
    return Webhook.objects.select_for_update().defer(*_UNLOCKED_SECRETS).get(pk=webhook.pk)


def _sync_instance(target: Webhook, source: Webhook) -> Webhook:
    """Copy the saved row into the caller's instance, so callers holding it see it."""
    deferred = source.get_deferred_fields()
    for model_field in Webhook._meta.concrete_fields:
        if model_field.attname not in deferred:
            setattr(target, model_field.attname, getattr(source, model_field.attname))
    return target


@transaction.atomic
def webhook_update(*, webhook: Webhook, disabled_by: DisabledBy = "api", **fields: Any) -> Webhook:
    """Change the given fields. `is_active` is applied against the current row: enabling
    resets `consecutive_failures`, disabling records when and why and emits
    `webhook.disabled` (`disabled_by`: "api" or "admin", who asked)."""
    unknown = set(fields) - WEBHOOK_FIELDS
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    locked = lock_webhook(webhook)
    auth_given = "auth" in fields
    if auth_given and fields["auth"] and "client_secret" not in fields["auth"]:
        # An update may keep the stored client_secret (the only read of it, under the lock).
        stored_auth = Webhook.objects.filter(pk=webhook.pk).values_list("auth", flat=True).get()
    else:
        stored_auth = None
    cleaned = validate_webhook_fields(fields, webhook.organization, exclude_pk=webhook.pk, stored_auth=stored_auth)
    is_active = cleaned.pop("is_active", None)
    if "url" in cleaned:
        auth_for_url_move(webhook=_with_auth(locked), url=cleaned["url"], auth_given=auth_given)
    if auth_given or "url" in cleaned:  # a cached token belongs to the old settings
        SubscriberToken.objects.filter(webhook_id=webhook.pk).delete()
    headers = headers_for_update(webhook=locked, url=cleaned.get("url"), headers=cleaned.pop("headers", None))
    if headers is not None:
        cleaned["headers"] = headers
    try:
        with transaction.atomic():
            model_update(instance=locked, fields=list(cleaned), data=cleaned)
    except IntegrityError:  # a concurrent writer took the name
        raise ValidationError({"name": _name_taken(cleaned.get("name", locked.name))}) from None
    if is_active is True and not locked.is_active:
        _enable_locked(locked)
    elif is_active is False:
        reason = "Disabled in the admin." if disabled_by == "admin" else "Disabled through the API."
        _disable_locked(locked, reason=reason, disabled_by=disabled_by)
    return _sync_instance(webhook, locked)


def _with_auth(locked: Webhook) -> Webhook:
    if "auth" in locked.get_deferred_fields():
        locked.auth = Webhook.objects.filter(pk=locked.pk).values_list("auth", flat=True).get()
    return locked


def _enable_locked(locked: Webhook) -> None:
    """Enable; the consecutive-failure count starts again from zero (also when already active)."""
    model_update(
        instance=locked,
        fields=["is_active", "consecutive_failures", "disabled_at", "disabled_reason"],
        data={"is_active": True, "consecutive_failures": 0, "disabled_at": None, "disabled_reason": ""},
    )


def _disable_locked(locked: Webhook, *, reason: str, disabled_by: DisabledBy) -> None:
    """Only an active webhook: the engine's own disable (when, why) is kept. The UPDATE is
    conditional on `is_active`, like the engine's, so whichever disables it first (and only
    that one) emits `webhook.disabled`, in this transaction."""
    now = timezone.now()
    data = {"is_active": False, "disabled_at": now, "disabled_reason": reason[:500]}
    if not Webhook.objects.filter(pk=locked.pk, is_active=True).update(**data, updated_at=now):
        return
    for name, value in {**data, "updated_at": now}.items():
        setattr(locked, name, value)
    emit_webhook_disabled(webhook_id=locked.pk, disabled_by=disabled_by)


@transaction.atomic
def webhook_enable(*, webhook: Webhook) -> Webhook:
    """Re-enable; the consecutive-failure count starts again from zero."""
    locked = lock_webhook(webhook)
    _enable_locked(locked)
    return _sync_instance(webhook, locked)


@transaction.atomic
def webhook_disable(*, webhook: Webhook, reason: str, disabled_by: DisabledBy = "api") -> Webhook:
    """Disable an active webhook (emitting `webhook.disabled`); one already disabled keeps
    its `disabled_at` and reason, and nothing is emitted."""
    locked = lock_webhook(webhook)
    _disable_locked(locked, reason=reason, disabled_by=disabled_by)
    return _sync_instance(webhook, locked)


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


@transaction.atomic
def webhook_rotate_secret(*, webhook: Webhook) -> Webhook:
    """A new secret; the old one keeps signing beside it for 24 hours.

    An old secret no key in FERNET_KEYS decrypts cannot sign: it is dropped, so rotating is
    also how an operator repairs such a webhook."""
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    if is_readable(webhook.secret):
        webhook.previous_secret = webhook.secret
        webhook.previous_secret_expires_at = timezone.now() + timedelta(hours=app_settings.secret_overlap_hours())
    else:
        webhook.previous_secret, webhook.previous_secret_expires_at = None, None
    webhook.secret = generate_secret()
    webhook.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return webhook
