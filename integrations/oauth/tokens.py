"""Usable access tokens: the one function every caller uses, and refresh that never races.

OAuth2 tokens are refreshed with the refresh token; JWT and SAML integrations have none, a
new token is minted from a signed assertion (`integrations.grants`) on the same path.

`get_access_token(integration)` returns a token valid for at least the refresh margin,
refreshing it first when needed. A refresh takes the integration's row lock
(`select_for_update`) and re-reads the row: if another worker refreshed meanwhile, its
token is used and no second refresh is sent (providers rotating refresh tokens would
answer `invalid_grant` to the stale one).

- `invalid_grant` (after the re-read) is terminal: status `error`, `needs_reauthorization`,
  and no further refresh attempts until the integration is authorized again.
- Transient failures (5xx, timeouts, other refusals) back off: no new attempt before
  `refresh_retry_at` (30 s doubling up to 30 min); meanwhile a still-valid token is served.
- Minting is terminal on more refusals (`consent_required`, `unauthorized_client`, ...:
  `integrations.grants.exchange`), and is re-authorized at the provider: a forced mint
  tries again despite `needs_reauthorization` and clears it on success.
- A config the grant cannot use (`GrantConfigInvalid`, no OAuth client configured):
  nothing is sent, but the attempt and its failure count and `last_error` says why.
- A 429 backs off at least its `Retry-After`.
- Every attempt's outcome is reported as connection issues in the same transaction
  (`integrations/detectors.py`): `reauthorization_required` for a dead grant (and the
  event `integration.reauthorization_required`), `provider_unavailable` for the rest; a
  token obtained resolves `reauthorization_required` at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common import metrics
from common.exceptions import ApplicationError, UpstreamError
from integrations import app_settings, detectors, providers
from integrations.models import UNREADABLE_CREDENTIALS, Integration
from integrations.services import safe_error_text

from .client import OAuthError, OAuthUpstreamError, resolve_client
from .flows import TOKEN_STATE_FIELDS, apply_tokens

logger = logging.getLogger(__name__)

REAUTHORIZATION_REQUIRED = "Re-authorization required"
#: auth types whose access token expires and is renewed here: OAuth2 by refresh token, JWT
#: and SAML by minting a new one from a signed assertion (`integrations.grants`)
TOKEN_AUTH_TYPES = (providers.OAUTH2, providers.JWT, providers.SAML)
MINTED_AUTH_TYPES = (providers.JWT, providers.SAML)


class ReauthorizationRequired(ApplicationError):
    pass


def _copy(target: Integration, source: Integration) -> Integration:
    for model_field in Integration._meta.concrete_fields:
        setattr(target, model_field.attname, getattr(source, model_field.attname))
    return target


def token_needs_refresh(integration: Integration, *, margin: timedelta | None = None) -> bool:
    if not (integration.credentials or {}).get("access_token"):
        return True
    if integration.token_expires_at is None:  # a token that does not expire (e.g. Slack without rotation)
        return False
    margin = app_settings.refresh_margin() if margin is None else margin
    return integration.token_expires_at <= timezone.now() + margin


def get_access_token(integration: Integration, *, margin: timedelta | None = None) -> str:
    """A usable access token for the integration (refreshed first when it expires soon).

    OAuth2: the stored token, refreshed when it expires within `margin` (default 5 min).
    API key: the stored `api_key` (or `token`). Raises ApplicationError (400) when the
    integration cannot produce one (not authorized, re-authorization required) and
    UpstreamError (502) when the provider fails.
    """
    credentials = integration.credentials or {}
    if integration.auth_type == providers.API_KEY:
        token = credentials.get("api_key") or credentials.get("token")
        if not token:
            raise ApplicationError("This integration has no API key.")
        return token
    if integration.auth_type not in TOKEN_AUTH_TYPES:
        raise ApplicationError(f"{integration.auth_type} integrations have no access token.")
    if not token_needs_refresh(integration, margin=margin):
        return credentials["access_token"]
    refreshed = oauth_refresh_token(integration=integration, margin=margin)
    return refreshed.credentials["access_token"]


def oauth_refresh_token(
    *, integration: Integration, force: bool = False, margin: timedelta | None = None
) -> Integration:
    """Refresh the integration's token under its row lock; see the module docstring.

    `force` refreshes even a fresh token (the API's refresh endpoint) and ignores the
    backoff, but still not twice: if the token changed while waiting for the lock,
    the newer one is kept.
    """
    seen_token = (integration.credentials or {}).get("access_token")
    failure: ApplicationError | None = None
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        credentials = locked.credentials or {}
        current = credentials.get("access_token")
        if force and current and current != seen_token:
            return _copy(integration, locked)  # refreshed by someone else meanwhile
        if not force and not token_needs_refresh(locked, margin=margin):
            return _copy(integration, locked)
        minted = locked.auth_type in MINTED_AUTH_TYPES
        # A minted grant is re-authorized at the provider (DocuSign consent, Google delegation),
        # not here: an explicit mint (`force`, POST .../oauth/refresh/) tries again after it.
        if locked.needs_reauthorization and not (force and minted):
            raise ReauthorizationRequired(
                f"{REAUTHORIZATION_REQUIRED}: the provider no longer accepts this integration's grant."
            )
        now = timezone.now()
        if not force and locked.refresh_retry_at and locked.refresh_retry_at > now:
            if current and locked.token_expires_at and locked.token_expires_at > now:
                return _copy(integration, locked)  # still valid: serve it while backing off
            retry_at = locked.refresh_retry_at.isoformat(timespec="seconds")
            raise UpstreamError(f"Token refresh is backing off after a failure; next attempt after {retry_at}.")
        refresh_token = credentials.get("refresh_token")
        if not minted and not refresh_token:
            raise ReauthorizationRequired(
                "This integration has no refresh token: authorize it (again) to get a new access token."
            )
        locked.token_refresh_attempts += 1
        grant = locked.auth_type if minted else "refresh"  # jwt, saml or refresh
        try:
            if minted:
                from integrations.grants import mint_token  # the grants import this module's errors

                tokens = mint_token(locked)
            else:
                tokens = resolve_client(locked).refresh(refresh_token=str(refresh_token))
        except OAuthError as error:
            failure = error
            if error.is_terminal:
                _mark_reauthorization_required(locked, error)
            else:
                _back_off(locked, error)
            detectors.token_failed(integration=locked, error=error, terminal=error.is_terminal)
        except OAuthUpstreamError as error:
            failure = error
            _back_off(locked, error)
            detectors.token_failed(integration=locked, error=error, terminal=False)
        except ApplicationError as error:
            # Nothing was sent (e.g. `GrantConfigInvalid`: a config the grant cannot use, no
            # OAuth client configured): the attempt and its failure still count, with why.
            # No backoff and no issue here: retrying costs nothing, the health check reports it.
            failure = error
            _record_failure(locked, error)
        else:
            apply_tokens(locked, tokens)
            locked.last_token_refresh_at = timezone.now()
            locked.save(update_fields=[*TOKEN_STATE_FIELDS, *LIFECYCLE_FIELDS])
            logger.info("Token %s for integration %s", "minted" if minted else "refreshed", locked.pk)
            detectors.token_obtained(integration=locked, scope=tokens.scope)
    # Only attempts reach here (a token served from the row, or refused before asking, returned or raised above).
    metrics.record_token_refresh(grant=grant, success=failure is None)
    _copy(integration, locked)
    if failure is not None:
        if isinstance(failure, OAuthError) and failure.is_terminal:
            raise ReauthorizationRequired(locked.last_error)
        raise failure
    return integration


#: the token lifecycle counters, saved with every attempt's outcome (under the row lock)
LIFECYCLE_FIELDS = ("token_refresh_attempts", "token_refresh_failures", "last_token_refresh_at")


def _mark_reauthorization_required(integration: Integration, error: OAuthError) -> None:
    integration.token_refresh_failures += 1
    integration.needs_reauthorization = True
    if integration.status != Integration.Status.INACTIVE:
        integration.status = Integration.Status.ERROR
    integration.last_error = safe_error_text(integration, f"{REAUTHORIZATION_REQUIRED}: {error.message}")
    integration.last_error_at = timezone.now()
    integration.refresh_retry_at = None
    fields = ["needs_reauthorization", "status", "last_error", "last_error_at", "refresh_retry_at", "updated_at"]
    integration.save(update_fields=[*fields, *LIFECYCLE_FIELDS])
    logger.warning("Integration %s needs re-authorization: %s", integration.pk, integration.last_error)


def _record_failure(integration: Integration, error: ApplicationError) -> None:
    integration.token_refresh_failures += 1
    integration.last_error = safe_error_text(integration, f"Token refresh failed: {error.message}")
    integration.last_error_at = timezone.now()
    integration.save(update_fields=["last_error", "last_error_at", "updated_at", *LIFECYCLE_FIELDS])
    logger.warning("Token refresh of integration %s could not start: %s", integration.pk, integration.last_error)


def _back_off(integration: Integration, error: ApplicationError) -> None:
    now = timezone.now()
    integration.token_refresh_failures += 1
    integration.refresh_failure_count += 1
    delay = app_settings.refresh_backoff(integration.refresh_failure_count)
    retry_after = getattr(error, "retry_after", None)  # a 429's Retry-After: no earlier attempt
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    integration.refresh_retry_at = now + delay
    integration.last_error = safe_error_text(integration, f"Token refresh failed: {error.message}")
    integration.last_error_at = now
    integration.save(
        update_fields=[
            "refresh_failure_count",
            "refresh_retry_at",
            "last_error",
            "last_error_at",
            "updated_at",
            *LIFECYCLE_FIELDS,
        ]
    )
    logger.warning(
        "Token refresh failed for integration %s (attempt %s, retry after %s): %s",
        integration.pk,
        integration.refresh_failure_count,
        integration.refresh_retry_at.isoformat(),
        integration.last_error,
    )


@dataclass(frozen=True)
class RefreshSummary:
    refreshed: int = 0
    failed: int = 0


def oauth_refresh_expiring_tokens(*, within: timedelta | None = None) -> RefreshSummary:
    """Refresh every active OAuth token expiring before `within` + the margin (the next run).

    Skips integrations that need re-authorization or are backing off. Each refresh is its
    own transaction under its own row lock, so this can run beside request traffic and on
    several clusters at once.
    """
    if within is None:
        within = timedelta(minutes=app_settings.refresh_interval_minutes())
    now = timezone.now()
    margin = within + app_settings.refresh_margin()
    candidates = (
        Integration.objects.filter(
            auth_type__in=TOKEN_AUTH_TYPES,
            status=Integration.Status.ACTIVE,
            needs_reauthorization=False,
            token_expires_at__isnull=False,
            token_expires_at__lte=now + margin,
        )
        .filter(Q(refresh_retry_at__isnull=True) | Q(refresh_retry_at__lte=now))
        .order_by("token_expires_at")
    )
    refreshed = failed = 0
    for integration in candidates.iterator():
        if not integration.credentials_readable:  # one lost key must not stop every refresh
            failed += 1
            logger.error("Proactive refresh of integration %s skipped: %s", integration.pk, UNREADABLE_CREDENTIALS)
            continue
        try:
            oauth_refresh_token(integration=integration, margin=margin)
            refreshed += 1
        except ApplicationError as error:
            failed += 1
            logger.warning("Proactive refresh of integration %s failed: %s", integration.pk, error.message)
        except Exception:  # a bug or a database refusal in one integration must not stop the others
            failed += 1
            logger.exception("Proactive refresh of integration %s failed unexpectedly", integration.pk)
    if refreshed or failed:
        logger.info("Proactive token refresh: %s refreshed, %s failed", refreshed, failed)
    return RefreshSummary(refreshed=refreshed, failed=failed)


def oauth_retry_grant(*, integration: Integration) -> Integration:
    """Try a grant marked dead again now, after an admin fixed what the provider refused
    (granted a JWT grant's consent): the mark is lifted and a token minted or refreshed at
    once; a refusal marks it again (and the issue stays open)."""
    now = timezone.now()
    Integration.objects.filter(pk=integration.pk, needs_reauthorization=True).update(
        needs_reauthorization=False, refresh_retry_at=None, updated_at=now
    )
    integration.needs_reauthorization = False
    integration.refresh_retry_at = None
    return oauth_refresh_token(integration=integration, force=True)
