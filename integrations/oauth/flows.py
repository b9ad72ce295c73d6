"""Authorization code flow: start (authorization URL + single-use state) and callback."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from urllib.parse import urlencode

from django.db import transaction
from django.utils import timezone

from common.exceptions import ApplicationError
from integrations import app_settings, detectors
from integrations.models import Integration, OAuthState
from organizations.models import Organization

from .binding import binding_matches, new_binding
from .client import TokenSet, resolve_client

logger = logging.getLogger(__name__)

MAX_PARAMETER_LENGTH = 4096
STATE_RETENTION = timedelta(days=1)
START_PATH = "/api/integrations/oauth/start/"


class OAuthStateInvalid(ApplicationError):
    """A missing, tampered, expired, reused or misdirected state: 400, nothing changes."""


@dataclass(frozen=True)
class AuthorizationStart:
    authorization_url: str
    state: str
    expires_at: datetime
    #: our page that binds the flow to the browser opening it, then goes to the provider
    start_url: str = ""
    #: the browser binding secret, for the cookie, when the flow was bound at its start
    binding: str = field(default="", repr=False)


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


@transaction.atomic
def oauth_start_authorization(*, integration: Integration, bind_browser: bool = False) -> AuthorizationStart:
    """A provider authorization URL with a fresh state (and PKCE challenge where supported).

    `bind_browser`: the caller is the browser that will authorize (the admin): the flow is
    bound now, and the caller sets the cookie with `binding`. Else the browser that opens
    `start_url` first binds it (see oauth/binding.py).
    """
    client = resolve_client(integration)
    now = timezone.now()
    OAuthState.objects.filter(expires_at__lt=now - STATE_RETENTION).delete()
    state = secrets.token_urlsafe(32)
    request = client.authorization_request(state=state)
    expires_at = now + app_settings.state_ttl()
    binding, binding_hash = new_binding() if bind_browser else ("", "")
    OAuthState.objects.create(
        binding_hash=binding_hash,
        integration=integration,
        organization_id=integration.organization_id,
        state_hash=hash_state(state),
        code_verifier=request.code_verifier,
        redirect_uri=client.redirect_uri,
        expires_at=expires_at,
    )
    logger.info("OAuth authorization started for integration %s (pkce=%s)", integration.pk, client.use_pkce)
    return AuthorizationStart(
        authorization_url=request.url,
        state=state,
        expires_at=expires_at,
        start_url=f"{app_settings.public_base_url()}{START_PATH}?{urlencode({'state': state})}",
        binding=binding,
    )


def _clean_parameter(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OAuthStateInvalid(f"Missing {name}.", errors={name: ["This field is required."]})
    if len(value) > MAX_PARAMETER_LENGTH:
        raise OAuthStateInvalid(f"Invalid {name}.", errors={name: ["Too long."]})
    return value.strip()


@transaction.atomic
def oauth_consume_state(
    *,
    state: str,
    integration: Integration | None = None,
    organization: Organization | None = None,
    browser_binding: str | None = None,
) -> OAuthState:
    """Check and use up a state. Nothing is consumed unless every check passes.

    `browser_binding`: the browser callback's binding cookie ("" when it has none); the
    state must be bound to it. None: the API callback, authenticated by the API key.
    """
    state = _clean_parameter(state, "state")
    row = OAuthState.objects.select_for_update().filter(state_hash=hash_state(state)).first()
    if row is None:
        raise OAuthStateInvalid("Invalid state: unknown or tampered with. Start the authorization again.")
    if integration is not None and row.integration_id != integration.pk:
        raise OAuthStateInvalid("Invalid state: it was issued for another integration.")
    if organization is not None and row.organization_id != organization.pk:
        raise OAuthStateInvalid("Invalid state: it was issued for another organization.")
    if row.used_at is not None:
        raise OAuthStateInvalid("This authorization state was already used. Start the authorization again.")
    if row.is_expired:
        raise OAuthStateInvalid("This authorization state has expired. Start the authorization again.")
    if browser_binding is not None and not binding_matches(row, browser_binding):
        raise OAuthStateInvalid(
            "This authorization was started in another browser: start it again from this one.",
            status_code=HTTPStatus.FORBIDDEN,
        )
    row.used_at = timezone.now()
    row.save(update_fields=["used_at"])
    return row


def oauth_exchange_code(
    *,
    code: str,
    state: str,
    integration: Integration | None = None,
    organization: Organization | None = None,
    browser_binding: str | None = None,
) -> Integration:
    """Validate the state, exchange the code, store the tokens and activate the integration.

    The state is used up first (in its own transaction: a state never works twice, even
    if the exchange fails); the HTTP exchange runs outside any transaction; a provider
    error raises (400 refusal, 502 failure) and leaves the integration as it was.
    """
    code = _clean_parameter(code, "code")
    row = oauth_consume_state(
        state=state, integration=integration, organization=organization, browser_binding=browser_binding
    )
    target = Integration.objects.select_related("organization").get(pk=row.integration_id)
    client = resolve_client(target, redirect_uri=row.redirect_uri)
    tokens = client.exchange_code(code=code, code_verifier=row.code_verifier)
    saved = oauth_store_tokens(integration=target, tokens=tokens, authorized=True)
    logger.info("OAuth authorization completed for integration %s", saved.pk)
    return saved


@transaction.atomic
def oauth_store_tokens(*, integration: Integration, tokens: TokenSet, authorized: bool = False) -> Integration:
    """Store a token response under the row lock; a response without a refresh token keeps ours.
    The connection issues it settles (re-authorization, scopes) are updated with it."""
    locked = Integration.objects.select_for_update().get(pk=integration.pk)
    apply_tokens(locked, tokens)
    if authorized:
        locked.status = Integration.Status.ACTIVE
    locked.save(update_fields=TOKEN_STATE_FIELDS)
    detectors.token_obtained(integration=locked, scope=tokens.scope)
    for model_field in Integration._meta.concrete_fields:
        setattr(integration, model_field.attname, getattr(locked, model_field.attname))
    return integration


# What `apply_tokens` sets: saves after it name exactly these (on the locked row).
TOKEN_STATE_FIELDS = (
    "credentials",
    "token_expires_at",
    "needs_reauthorization",
    "refresh_failure_count",
    "refresh_retry_at",
    "last_error",
    "last_error_at",
    "status",
    "granted_scopes",
    "updated_at",
)


def apply_tokens(integration: Integration, tokens: TokenSet) -> None:
    now = timezone.now()
    credentials = dict(integration.credentials or {})
    credentials["access_token"] = tokens.access_token
    if tokens.refresh_token:  # rotated (or first) refresh token: store it at once
        credentials["refresh_token"] = tokens.refresh_token
    if tokens.token_type:
        credentials["token_type"] = tokens.token_type
    if tokens.scope:
        credentials["scope"] = tokens.scope
        # Slack joins with commas, everyone else with spaces (RFC 6749 §3.3)
        integration.granted_scopes = sorted({s for s in re.split(r"[\s,]+", tokens.scope) if s})
    credentials.update(tokens.extra)
    integration.credentials = credentials
    integration.token_expires_at = now + timedelta(seconds=tokens.expires_in) if tokens.expires_in else None
    integration.needs_reauthorization = False
    integration.refresh_failure_count = 0
    integration.refresh_retry_at = None
    integration.last_error = ""
    integration.last_error_at = None
    if integration.status in {Integration.Status.ERROR, Integration.Status.PENDING}:
        integration.status = Integration.Status.ACTIVE
