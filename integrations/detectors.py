"""What the token side reports as connection issues (`integrations/issues.py` owns the rules).

Called by `integrations.oauth.tokens` (refresh and mint) and `integrations.oauth.flows`
(a completed authorization) under the integration's row lock, in their transaction:

- a terminal refusal of the grant (`invalid_grant`, DocuSign's `consent_required`, ...) is
  `reauthorization_required`, with the `reconnect_url` (and the `consent_url` where the
  grant needs one); opening it also sends `integration.reauthorization_required`;
- the client's own credentials refused at the token endpoint are `credentials_rejected`:
  `invalid_client` for every grant, `unauthorized_client` for an OAuth refresh and the SAML
  bearer grant (the JWT bearer grant makes it terminal: Google's domain-wide delegation not
  granted, `integrations/grants/exchange.py`, so it is `reauthorization_required` above);
- a token endpoint on a private or reserved address (refused at connect time) is
  `config_invalid`; a 429 from it is `rate_limited` (with `retry_after` when it said);
- any other failure (5xx, timeout, an unreadable answer, another refusal) is transient:
  `provider_unavailable`;
- a token obtained (refreshed, minted, or a completed authorization) resolves
  `reauthorization_required` at once, counts as one observation without
  `provider_unavailable`, and compares the granted scopes with the configured ones
  (`missing_scopes`, resolved at once when they are all granted).

The health check (health/checks.py) reports what it sees of the provider's API itself.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from common.exceptions import ApplicationError

from . import app_settings, providers
from .issues import Kind, issue_cleared, issue_detected
from .models import Integration
from .services import safe_error_text

#: token-endpoint errors that refuse the client itself (RFC 6749 §5.2), not the grant
CLIENT_REJECTED_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
#: scopes that are asked for but never listed in the granted scope: `offline_access` asks
#: for a refresh token (Microsoft, Indeed, BambooHR), the refresh token shows it was granted
UNLISTED_SCOPES = frozenset({"offline_access"})
#: what to check when the token endpoint refuses the client, per auth type
CLIENT_CHECK = {
    providers.OAUTH2: "Check the client id and secret.",
    providers.JWT: "Check the client id (or issuer) and that the key is the one registered at the provider.",
    providers.SAML: "Check config.client_id and credentials.client_secret.",
}


def _name(integration: Integration) -> str:
    info = integration.provider_info
    return info.display_name if info else integration.provider


# --- re-authorization ---------------------------------------------------------------------


def reconnect_url(integration: Integration) -> str:
    """The admin page that starts the authorization again, for an admin of the integration's
    organization (a confirmation page with a POST button: docs/OAUTH.md "Reconnecting")."""
    path = reverse("admin:integrations_integration_reconnect", args=[integration.pk])
    return f"{app_settings.public_base_url()}{path}"


def reauthorization_details(integration: Integration) -> dict[str, Any]:
    details: dict[str, Any] = {"reconnect_url": reconnect_url(integration)}
    from .grants import consent_url  # the grants import the token path

    consent = consent_url(integration)
    if consent:
        details["consent_url"] = consent
    return details


def reauthorization_message(integration: Integration, reason: str = "") -> str:
    what = "grant its consent again" if integration.auth_type in (providers.JWT, providers.SAML) else "reconnect it"
    because = f" ({reason})" if reason else ""
    return (
        f"{_name(integration)} no longer accepts this integration's authorization{because}. "
        f"An admin of the organization must {what}: open the reconnect URL."
    )


# --- the token path -----------------------------------------------------------------------


def token_failed(*, integration: Integration, error: ApplicationError, terminal: bool) -> None:
    """A refresh or mint failed (`terminal`: the grant is dead, re-authorization needed)."""
    from .oauth.client import (  # the OAuth client imports the models this imports
        OAuthError,
        TokenEndpointNotPublic,
        TokenEndpointRateLimited,
    )

    text = safe_error_text(integration, error.message)
    code = error.error if isinstance(error, OAuthError) else ""
    if isinstance(error, TokenEndpointNotPublic):
        issue_detected(
            integration=integration,
            kind=Kind.CONFIG_INVALID,
            message=f"Could not get an access token from {_name(integration)}: {text}",
            details={"error": code, "source": "token_endpoint"},
        )
    elif isinstance(error, TokenEndpointRateLimited):
        details: dict[str, Any] = {"error": code, "source": "token_endpoint"}
        if error.retry_after is not None:
            details["retry_after"] = error.retry_after
        issue_detected(
            integration=integration,
            kind=Kind.RATE_LIMITED,
            message=f"{_name(integration)}'s token endpoint is rate limiting this integration: {text}",
            details=details,
        )
    elif terminal:
        issue_detected(
            integration=integration,
            kind=Kind.REAUTHORIZATION_REQUIRED,
            message=reauthorization_message(integration, text),
            details={**reauthorization_details(integration), "error": code},
        )
    elif code in CLIENT_REJECTED_ERRORS:
        issue_detected(
            integration=integration,
            kind=Kind.CREDENTIALS_REJECTED,
            message=f"{_name(integration)} refused this integration's client credentials: {text} "
            f"{CLIENT_CHECK.get(integration.auth_type, CLIENT_CHECK[providers.OAUTH2])}",
            details={"error": code, "source": "token_endpoint"},
        )
    else:
        issue_detected(
            integration=integration,
            kind=Kind.PROVIDER_UNAVAILABLE,
            message=f"Could not get an access token from {_name(integration)}: {text}",
            details={"error": code, "source": "token_endpoint"} if code else {"source": "token_endpoint"},
        )


def token_obtained(*, integration: Integration, scope: str) -> None:
    """A token was refreshed, minted or obtained by authorization (`scope`: the answer's)."""
    issue_cleared(integration=integration, kind=Kind.REAUTHORIZATION_REQUIRED, immediately=True)
    issue_cleared(integration=integration, kind=Kind.PROVIDER_UNAVAILABLE)
    scopes_observed(integration=integration, scope=scope)


# --- scopes -------------------------------------------------------------------------------


def configured_scopes(integration: Integration) -> list[str]:
    """The scopes this integration asks for: `config.scopes`, else the provider's defaults
    (OAuth 2.0), or the JWT grant's (`jwt.default_scopes`, else the provider's: what
    integrations/grants/jwt_bearer.py puts in the assertion)."""
    config = integration.config if isinstance(integration.config, dict) else {}
    scopes = config.get("scopes")
    if isinstance(scopes, list) and scopes:
        return [scope for scope in scopes if isinstance(scope, str)]
    info = integration.provider_info
    if info is None:
        return []
    if integration.auth_type == providers.OAUTH2:
        return list(info.default_scopes)
    if integration.auth_type == providers.JWT and info.jwt is not None:
        return list(info.jwt.default_scopes or info.default_scopes)
    return []


def missing_scopes(wanted: list[str], granted: list[str]) -> list[str]:
    """The wanted scopes not granted. Compared without case; a granted scope qualified with
    its resource (`https://graph.microsoft.com/User.Read`) grants `User.Read`."""
    have = {scope.casefold() for scope in granted}

    def is_granted(scope: str) -> bool:
        key = scope.casefold()
        return key in have or any(g.endswith("/" + key) for g in have)

    return [scope for scope in wanted if scope.casefold() not in UNLISTED_SCOPES and not is_granted(scope)]


def scopes_observed(*, integration: Integration, scope: str) -> None:
    """Compare the scopes of a token answer with the configured ones. An answer without
    `scope` grants what the grant had (RFC 6749 §5.1): nothing new is learnt."""
    if not scope:
        return
    wanted = configured_scopes(integration)
    missing = missing_scopes(wanted, list(integration.granted_scopes or []))
    if not missing:
        issue_cleared(integration=integration, kind=Kind.MISSING_SCOPES, immediately=True)
        return
    issue_detected(
        integration=integration,
        kind=Kind.MISSING_SCOPES,
        message=(
            f"{_name(integration)} granted fewer scopes than configured; missing: {', '.join(missing)}. "
            "Reconnect and grant them, or remove them from config.scopes."
        ),
        details={
            "missing_scopes": missing,
            "granted_scopes": list(integration.granted_scopes or []),
            "reconnect_url": reconnect_url(integration),
        },
    )
