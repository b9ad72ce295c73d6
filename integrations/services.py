"""Every write to an integration goes through these services (keyword-only, atomic)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.exceptions import ApplicationError, ConflictError
from common.redaction import redact
from common.services import model_update
from common.text import printable, quoted
from organizations.models import Organization

from . import app_settings, providers
from .grants.jwt_keys import key_secrets
from .models import UNREADABLE_CREDENTIALS, Integration
from .validation import (
    OAUTH_TOKEN_KEYS,
    IntegrationInvalid,
    credentials_complete,
    validate_config,
    validate_credentials,
    validate_provider_and_auth_type,
)

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000
#: auth types whose access token is minted from a signed assertion (`integrations.grants`)
MINTED_AUTH_TYPES = (providers.JWT, providers.SAML)


def _lock(integration: Integration) -> Integration:
    return Integration.objects.select_for_update().get(pk=integration.pk)


def _sync_instance(target: Integration, source: Integration) -> Integration:
    """Copy the saved state into the caller's instance, so callers holding it see it."""
    for model_field in Integration._meta.concrete_fields:
        setattr(target, model_field.attname, getattr(source, model_field.attname))
    return target


def _check_name(*, organization: Organization, name: Any, exclude_pk=None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise IntegrationInvalid({"name": ["This field is required."]})
    name = name.strip()
    if len(name) > (Integration._meta.get_field("name").max_length or 200):
        raise IntegrationInvalid({"name": ["At most 200 characters."]})
    duplicates = Integration.objects.filter(organization=organization, name=name)
    if exclude_pk is not None:
        duplicates = duplicates.exclude(pk=exclude_pk)
    if duplicates.exists():
        raise IntegrationInvalid({"name": [f"An integration named {quoted(name)} already exists."]})
    return name


def _save_unique(integration: Integration, save: Callable[[], Any] | None = None) -> None:
    """Run `save` (default: insert the new integration); a name taken meanwhile is a 400."""
    try:
        with transaction.atomic():
            if save is None:
                integration.save(force_insert=True)
            else:
                save()
    except IntegrityError:  # a concurrent writer took the name
        taken = f"An integration named {quoted(integration.name)} already exists."
        raise IntegrationInvalid({"name": [taken]}) from None


@transaction.atomic
def integration_create(
    *,
    organization: Organization,
    name: str,
    provider: str,
    auth_type: str,
    config: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
) -> Integration:
    """Create an integration; complete non-OAuth credentials make it `active`, else `pending`."""
    name = _check_name(organization=organization, name=name)
    provider_info = validate_provider_and_auth_type(provider, auth_type)
    config = validate_config(provider_info, auth_type, config if config is not None else {})
    credentials = validate_credentials(provider_info, auth_type, credentials or {}, config=config)
    complete = credentials_complete(auth_type, credentials)
    integration = Integration(
        organization=organization,
        name=name,
        provider=provider,
        auth_type=auth_type,
        config=config,
        status=Integration.Status.ACTIVE if complete else Integration.Status.PENDING,
    )
    integration.credentials = credentials
    _save_unique(integration)
    logger.info(
        "Integration %s created: provider=%s auth_type=%s organization=%s status=%s",
        integration.pk,
        provider,
        auth_type,
        organization.slug,
        integration.status,
    )
    return integration


@transaction.atomic
def integration_update(
    *,
    integration: Integration,
    name: str | None = None,
    provider: str | None = None,
    auth_type: str | None = None,
    config: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
) -> Integration:
    """Change what is given (None keeps a value). Sending `credentials` replaces them.

    Replacing the credentials of an OAuth2 integration keeps the tokens the OAuth flow
    stored (unless the new credentials carry their own, or the provider or auth type
    changes), so rotating a client secret does not force a re-authorization.
    """
    locked = _lock(integration)
    new_name = (
        locked.name if name is None else _check_name(organization=locked.organization, name=name, exclude_pk=locked.pk)
    )
    new_provider = locked.provider if provider is None else provider
    new_auth_type = locked.auth_type if auth_type is None else auth_type
    provider_info = validate_provider_and_auth_type(new_provider, new_auth_type)
    connection_changed = (new_provider, new_auth_type) != (locked.provider, locked.auth_type)
    new_config = validate_config(provider_info, new_auth_type, locked.config if config is None else config)
    if credentials is None and not locked.credentials_readable:
        raise ConflictError(UNREADABLE_CREDENTIALS)
    if credentials is None:
        if connection_changed:
            raise IntegrationInvalid({"credentials": ["Send new credentials when changing provider or auth type."]})
        new_credentials = validate_credentials(provider_info, new_auth_type, locked.credentials, config=new_config)
    else:
        new_credentials = validate_credentials(provider_info, new_auth_type, credentials, config=new_config)
        if new_auth_type == providers.OAUTH2 and not connection_changed:
            for key in OAUTH_TOKEN_KEYS:
                if key not in new_credentials and locked.credentials_readable and key in locked.credentials:
                    new_credentials[key] = locked.credentials[key]

    data: dict[str, Any] = {
        "name": new_name,
        "provider": new_provider,
        "auth_type": new_auth_type,
        "config": new_config,
        "credentials": new_credentials,
    }
    if connection_changed:
        data.update(token_expires_at=None, needs_reauthorization=False, refresh_failure_count=0, refresh_retry_at=None)
    elif new_auth_type in MINTED_AUTH_TYPES and (credentials is not None or new_config != locked.config):
        # A minted token belongs to the key and claims it was minted from (the user it acts
        # as): new ones mint a new token, and a grant refused before may be accepted now.
        data["credentials"] = {k: v for k, v in new_credentials.items() if k not in OAUTH_TOKEN_KEYS}
        data.update(token_expires_at=None, needs_reauthorization=False, refresh_failure_count=0, refresh_retry_at=None)
    if locked.status != Integration.Status.INACTIVE and (connection_changed or credentials is not None):
        needs_reauthorization = data.get("needs_reauthorization", locked.needs_reauthorization)
        if not credentials_complete(new_auth_type, new_credentials):
            # Not connected any more: its health is unknown until it is connected and checked.
            data["status"] = Integration.Status.PENDING
            data["health_status"] = Integration.HealthStatus.UNKNOWN
        elif locked.status == Integration.Status.PENDING or (
            locked.status == Integration.Status.ERROR and not needs_reauthorization
        ):
            data["status"] = Integration.Status.ACTIVE
    # Only what changed, on the locked row: health and token bookkeeping stay as they are.
    _save_unique(locked, lambda: model_update(instance=locked, fields=list(data), data=data))
    logger.info("Integration %s updated (credentials %s)", locked.pk, "replaced" if credentials else "kept")
    return _sync_instance(integration, locked)


@transaction.atomic
def integration_set_credentials(*, integration: Integration, credentials: dict[str, str]) -> Integration:
    return integration_update(integration=integration, credentials=credentials)


@transaction.atomic
def integration_delete(*, integration: Integration) -> None:
    pk = integration.pk
    integration.delete()
    logger.info("Integration %s deleted", pk)


def integration_secrets(integration: Integration) -> tuple[list[str], list[tuple[str, str]]]:
    """Every secret an integration's requests may carry, and the (client id, secret) pairs
    sent as Basic auth: its credentials, its own OAuth app, the platform's shared app."""
    credentials = integration.credentials if isinstance(integration.credentials, dict) else {}
    config = integration.config if isinstance(integration.config, dict) else {}
    secrets = [value for value in credentials.values() if isinstance(value, str)]
    secrets.extend(key_secrets(credentials))  # a private key inside a service-account key, PEM lines
    pairs: list[tuple[str, str]] = []
    own_id, own_secret = config.get("client_id"), credentials.get("client_secret")
    if isinstance(own_id, str) and isinstance(own_secret, str) and own_secret:
        pairs.append((own_id, own_secret))
    provider = integration.provider_info
    if provider is not None and provider.has_shared_oauth_app:
        platform_secret = app_settings.client_secret(provider.env_prefix)
        if platform_secret:
            secrets.append(platform_secret)
            pairs.append((app_settings.client_id(provider.env_prefix), platform_secret))
    return secrets, pairs


def safe_error_text(integration: Integration, error: str) -> str:
    """`error` fit for `last_error`: redacted (every form, see common/redaction.py), then cut,
    without control characters (`common.text.printable`: PostgreSQL and webhook payloads
    refuse a NUL)."""
    secrets, pairs = integration_secrets(integration)
    return printable(redact(str(error), secrets, basic_pairs=pairs))[:MAX_ERROR_LENGTH]


@transaction.atomic
def integration_record_error(*, integration: Integration, error: str, mark_error: bool = False) -> Integration:
    """Record a failure (`last_error`, `last_error_at`); `mark_error` also sets status `error`."""
    locked = _lock(integration)
    locked.last_error = safe_error_text(locked, error)
    locked.last_error_at = timezone.now()
    fields = ["last_error", "last_error_at", "updated_at"]
    if mark_error and locked.status != Integration.Status.INACTIVE:
        locked.status = Integration.Status.ERROR
        fields.append("status")
    locked.save(update_fields=fields)
    logger.warning("Integration %s error recorded: %s", locked.pk, locked.last_error)
    return _sync_instance(integration, locked)


@transaction.atomic
def integration_record_success(*, integration: Integration) -> Integration:
    """Clear the last error; an integration in `error` that needs no re-authorization is active again."""
    locked = _lock(integration)
    locked.last_error = ""
    locked.last_error_at = None
    fields = ["last_error", "last_error_at", "updated_at"]
    if locked.status == Integration.Status.ERROR and not locked.needs_reauthorization:
        locked.status = Integration.Status.ACTIVE
        fields.append("status")
    locked.save(update_fields=fields)
    return _sync_instance(integration, locked)


@transaction.atomic
def integration_record_sync(*, integration: Integration, success: bool, error: str = "") -> Integration:
    """A sync job of the host platform ran: set `last_sync_at`, then clear or set the error."""
    if not success and not (isinstance(error, str) and error.strip()):
        error = "Sync failed."
    if success:
        integration = integration_record_success(integration=integration)
    else:
        integration = integration_record_error(integration=integration, error=error)
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk).update(last_sync_at=now, updated_at=now)
    integration.last_sync_at = now
    integration.updated_at = now
    logger.info("Integration %s sync recorded: success=%s", integration.pk, success)
    return integration


@transaction.atomic
def integration_activate(*, integration: Integration) -> Integration:
    locked = _lock(integration)
    if locked.needs_reauthorization:
        raise ApplicationError("This integration needs to be re-authorized before it can be activated.")
    if not locked.credentials_readable:
        raise ConflictError(UNREADABLE_CREDENTIALS)
    if not credentials_complete(locked.auth_type, locked.credentials):
        raise ApplicationError("This integration has no usable credentials yet: authorize it first.")
    if locked.status != Integration.Status.ACTIVE:
        locked.status = Integration.Status.ACTIVE
        locked.save(update_fields=["status", "updated_at"])
        logger.info("Integration %s activated", locked.pk)
    return _sync_instance(integration, locked)


@transaction.atomic
def integration_deactivate(*, integration: Integration) -> Integration:
    locked = _lock(integration)
    if locked.status != Integration.Status.INACTIVE:
        locked.status = Integration.Status.INACTIVE
        locked.save(update_fields=["status", "updated_at"])
        logger.info("Integration %s deactivated", locked.pk)
    return _sync_instance(integration, locked)
