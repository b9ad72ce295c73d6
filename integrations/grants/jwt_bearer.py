"""The JWT bearer grant (RFC 7523): a JWT signed with the integration's key, exchanged for
an access token (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion=`).

What is signed comes from the catalogue entry's `JwtGrant` (`integrations/providers/schema.py`)
filled from the integration's config and credentials:

- DocuSign: `iss` = `config.client_id` (the integration key), `sub` = `config.user_id`,
  `aud` = `config.account_domain`, a `scope` claim (default `signature impersonation`),
  signed with `credentials.private_key`.
- Google service accounts: `iss` = the key's `client_email`, `sub` = `config.subject`,
  `aud` = the key's `token_uri`, a `scope` claim (default the provider's scopes), the
  `kid` header = the key's `private_key_id`; `credentials.service_account` is the JSON key.
- custom: `iss` = `config.issuer`, `sub` = `config.subject` (default the issuer), `aud` =
  `config.audience` (default the token URL), `kid` = `config.key_id`, `extra_claims`, the
  scopes as a `scope` form parameter; `credentials.private_key` (`client_secret` for HS256).

Every assertion has `iat`, `exp` (5 minutes later: DocuSign and Google accept at most an
hour) and a unique `jti`; it is signed with RS256 for an RSA key, ES256/384/512 for an EC
key, or `config.algorithm` (custom). The token goes to the entry's token endpoint, https on
the provider's own hosts (`jwt_keys.token_endpoint_refusal`), through `exchange.py`.

`mint` is called only by `integrations.oauth.tokens` under the integration's row lock
(see `integrations/grants/__init__.py`); keys and assertions are never logged and are
redacted from every error text.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import jwt

from common.exceptions import ConflictError
from integrations import app_settings, providers
from integrations.models import UNREADABLE_CREDENTIALS, Integration
from integrations.oauth.client import TokenSet

from .exchange import GrantConfigInvalid, exchange_assertion
from .jwt_keys import (
    KeyProblem,
    algorithm_for,
    fill,
    jwt_config_errors,
    jwt_credential_errors,
    key_secrets,
    load_private_key,
    parse_service_account,
)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: how long an assertion is valid: it is used at once; DocuSign and Google allow at most 1 h
ASSERTION_LIFETIME_SECONDS = 300


@dataclass(frozen=True)
class JwtRequest:
    """One token request of the grant: where it goes and what it carries (never shown)."""

    token_url: str
    assertion: str = field(repr=False)
    params: dict[str, str] = field(default_factory=dict)
    hidden: list[str] = field(default_factory=list, repr=False)
    hints: dict[str, str] = field(default_factory=dict)


def _grant(integration: Integration) -> tuple[providers.Provider, providers.JwtGrant]:
    provider = integration.provider_info
    if provider is None or provider.jwt is None or integration.auth_type != providers.JWT:
        raise GrantConfigInvalid("This integration does not use the JWT bearer grant.")
    return provider, provider.jwt


def _config(provider: providers.Provider, integration: Integration) -> dict[str, Any]:
    """The integration's config over the entry's defaults (rows may predate a default)."""
    defaults = {spec.name: spec.default for spec in provider.all_config_fields() if spec.default is not None}
    return {**defaults, **(integration.config if isinstance(integration.config, dict) else {})}


def _scopes(provider: providers.Provider, grant: providers.JwtGrant, config: dict[str, Any]) -> list[str]:
    configured = config.get("scopes")
    if isinstance(configured, list) and configured:
        return [str(scope) for scope in configured]
    return list(grant.default_scopes or provider.default_scopes)


def _filled(template: str, config: dict[str, Any], what: str) -> str:
    try:
        return fill(template, config)
    except KeyError as missing:
        raise GrantConfigInvalid(f"Cannot mint a token: config.{missing.args[0]} is missing ({what}).") from None


def jwt_request(integration: Integration, *, now: float | None = None) -> JwtRequest:
    """The signed token request for `integration` (raises GrantConfigInvalid, nothing sent)."""
    provider, grant = _grant(integration)
    if not integration.credentials_readable:
        raise ConflictError(UNREADABLE_CREDENTIALS)
    config = _config(provider, integration)
    credentials: dict[str, Any] = integration.credentials if isinstance(integration.credentials, dict) else {}
    # The rules of save time, again before anything is signed or sent: rows saved before a
    # rule existed, or written around the services, get the same answer.
    allow_private = app_settings.allow_private_urls()
    problems = {
        **jwt_config_errors(provider, config, allow_private=allow_private),
        **jwt_credential_errors(provider, credentials, config=config, allow_private=allow_private),
    }
    if problems:
        name, messages = next(iter(problems.items()))
        raise GrantConfigInvalid(f"Cannot mint a token: {name}: {messages[0]}")

    scopes = _scopes(provider, grant, config)
    headers: dict[str, str] = {}
    signing_key: Any
    try:
        if grant.key == "service_account":
            account = parse_service_account(credentials["service_account"])
            token_url, issuer, audience = account.token_uri, account.client_email, account.token_uri
            signing_key = load_private_key(account.private_key)
            algorithm = algorithm_for(signing_key)
            headers["kid"] = account.private_key_id
            client_id = account.client_id
        else:
            token_url = _filled(grant.token_url, config, "the token URL")
            issuer = _filled(grant.issuer, config, "the issuer")
            audience = config.get("audience") or (
                _filled(grant.audience, config, "the audience") if grant.audience else token_url
            )
            requested = config.get("algorithm") if isinstance(config.get("algorithm"), str) else None
            if requested and requested.startswith("HS"):
                signing_key, algorithm = credentials["client_secret"], requested
            else:
                signing_key = load_private_key(credentials["private_key"])
                algorithm = algorithm_for(signing_key, requested)
            if isinstance(config.get("key_id"), str) and config["key_id"]:
                headers["kid"] = config["key_id"]
            client_id = str(config.get("client_id") or "")
    except KeyProblem as problem:  # checked above; kept for a key that changed meanwhile
        raise GrantConfigInvalid(f"Cannot mint a token: {problem}") from None
    try:
        subject = fill(grant.subject, config) if grant.subject else issuer
    except KeyError:  # optional (custom): the client acts for itself (RFC 7523 section 3)
        subject = issuer

    issued_at = int(now if now is not None else time.time())
    extra_claims = config.get("extra_claims")
    extra: dict[str, Any] = extra_claims if isinstance(extra_claims, dict) else {}
    claims: dict[str, Any] = {
        **extra,
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ASSERTION_LIFETIME_SECONDS,
        "jti": uuid.uuid4().hex,
    }
    params: dict[str, str] = {}
    if scopes and grant.scope_in == "claim":
        claims["scope"] = " ".join(scopes)
    elif scopes:
        params["scope"] = " ".join(scopes)
    assertion = jwt.encode(claims, signing_key, algorithm=algorithm, headers=headers or None)
    hidden = [value for value in credentials.values() if isinstance(value, str)] + key_secrets(credentials)
    hints = {
        error: hint.format(client_id=client_id or "(see the key file)", scopes=",".join(scopes))
        for error, hint in grant.error_hints.items()
    }
    return JwtRequest(token_url=token_url, assertion=assertion, params=params, hidden=hidden, hints=hints)


def mint(integration: Integration) -> TokenSet:
    """A new access token from a freshly signed assertion (see the module docstring)."""
    request = jwt_request(integration)
    return exchange_assertion(
        token_url=request.token_url,
        grant_type=GRANT_TYPE,
        assertion=request.assertion,
        params=request.params,
        hidden=request.hidden,
        hints=request.hints,
    )


def consent_url(integration: Integration) -> str:
    """Where a user grants the consent the grant needs (DocuSign: the integration key may
    impersonate them), or "" when the provider needs none or the config is incomplete.

    The provider sends the browser back to the redirect URI (`config.redirect_uri`, else
    `<PREFIX>_REDIRECT_URI`, else our OAuth callback), which must be registered with the
    integration key; the code it carries is not used: the grant needs only the consent.
    """
    try:
        provider, grant = _grant(integration)
    except GrantConfigInvalid:
        return ""
    config = _config(provider, integration)
    client_id = config.get("client_id")
    if not grant.consent_url or not isinstance(client_id, str) or not client_id:
        return ""
    try:
        base = fill(grant.consent_url, config)
    except KeyError:
        return ""
    redirect_uri = config.get("redirect_uri") or app_settings.redirect_uri(provider.env_prefix)
    query = {
        "response_type": "code",
        "scope": " ".join(_scopes(provider, grant, config)),
        "client_id": client_id,
        "redirect_uri": redirect_uri,
    }
    return f"{base}?{urlencode(query, quote_via=quote)}"
