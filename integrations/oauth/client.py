"""The OAuth 2.0 client: endpoints and client credentials for an integration, token requests.

Provider differences come from the catalogue (`providers.py`) and the integration's config;
this module only speaks RFC 6749 (+ RFC 7636 PKCE) and knows Slack's `ok: false` answers.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from common.exceptions import ApplicationError, UpstreamError
from integrations import app_settings, providers
from integrations.http import InvalidIPAddress, get_session
from integrations.models import Integration
from integrations.services import redact

USER_AGENT = "integrations-oauth/1.0"

#: token-endpoint errors meaning the grant (code or refresh token) is dead for good
TERMINAL_GRANT_ERRORS = {"invalid_grant", "invalid_refresh_token", "invalid_code", "code_already_used"}
MAX_PROVIDER_TEXT = 300


class OAuthError(ApplicationError):
    """The provider refused (4xx or an OAuth error body): 400 with the provider's text."""

    def __init__(self, message: str, *, error: str = ""):
        super().__init__(message)
        self.error = error

    @property
    def is_terminal(self) -> bool:
        return self.error in TERMINAL_GRANT_ERRORS


class OAuthUpstreamError(UpstreamError):
    """The provider failed (5xx, timeout, unreadable answer): 502, worth retrying later."""


@dataclass(frozen=True)
class TokenSet:
    # Tokens are kept out of repr() so a logged object or a traceback never shows them.
    access_token: str = field(repr=False)
    refresh_token: str = field(default="", repr=False)
    token_type: str = ""
    scope: str = ""
    expires_in: int | None = None
    extra: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class OAuthClient:
    provider: providers.Provider
    client_id: str
    client_secret: str = field(repr=False)
    authorization_url: str
    token_url: str
    refresh_url: str
    redirect_uri: str
    scopes: tuple[str, ...]
    use_pkce: bool
    token_auth_method: str
    extra_authorize_params: dict[str, str]

    # --- authorization --------------------------------------------------------------

    def authorization_request_url(self, *, state: str, code_challenge: str | None) -> str:
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
        }
        if self.scopes:
            params["scope"] = self.provider.scope_separator.join(self.scopes)
        if code_challenge:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = "S256"
        params.update(self.extra_authorize_params)
        separator = "&" if "?" in self.authorization_url else "?"
        return f"{self.authorization_url}{separator}{urlencode(params)}"

    # --- token endpoint -------------------------------------------------------------

    def exchange_code(self, *, code: str, code_verifier: str = "") -> TokenSet:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if code_verifier:
            data["code_verifier"] = code_verifier
        return self._token_request(self.token_url, data, secrets_in_play=[code, code_verifier])

    def refresh(self, *, refresh_token: str) -> TokenSet:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token_request(self.refresh_url or self.token_url, data, secrets_in_play=[refresh_token])

    def _token_request(self, url: str, data: dict[str, str], *, secrets_in_play: list[str]) -> TokenSet:
        hidden = [self.client_secret, *secrets_in_play]
        auth = None
        if self.token_auth_method == providers.CLIENT_SECRET_BASIC and self.client_secret:
            auth = (self.client_id, self.client_secret)
        else:
            data["client_id"] = self.client_id
            if self.client_secret:
                data["client_secret"] = self.client_secret
        try:
            response = get_session(USER_AGENT).post(url, data=data, auth=auth, headers={"Accept": "application/json"})
        except InvalidIPAddress:
            # SSRF protection at connect time: the endpoint resolves to a non-public address now.
            raise OAuthError(
                f"The provider's token endpoint is not on a public address ({url}); "
                "set INTEGRATIONS_ALLOW_PRIVATE_URLS for a private one."
            ) from None
        except requests.Timeout:
            raise OAuthUpstreamError(f"The provider's token endpoint timed out ({url}).") from None
        except requests.RequestException as error:
            raise OAuthUpstreamError(
                f"Could not reach the provider's token endpoint ({type(error).__name__}, {url})."
            ) from None
        text = redact(response.text[:MAX_PROVIDER_TEXT], hidden)
        if response.status_code >= 500:
            raise OAuthUpstreamError(f"The provider answered HTTP {response.status_code}: {text}")
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            if response.ok:
                raise OAuthUpstreamError(f"The provider's token endpoint answered no JSON object: {text}")
            raise OAuthError(f"The provider refused the request (HTTP {response.status_code}): {text}")
        error = payload.get("error")
        if not response.ok or error or payload.get("ok") is False:
            error_code = str(error or f"http_{response.status_code}")
            description = payload.get("error_description") or ""
            message = redact(f"{error_code}: {description}".rstrip(": "), hidden)[:MAX_PROVIDER_TEXT]
            raise OAuthError(f"The provider refused the request: {message}", error=error_code)
        access_token = payload.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise OAuthUpstreamError("The provider's token response has no access_token.")
        expires_in = payload.get("expires_in")
        try:
            expires_in = int(expires_in) if expires_in is not None else None
        except (TypeError, ValueError):
            expires_in = None
        extra = {k: v for k, v in payload.items() if k == "id_token" and isinstance(v, str)}
        return TokenSet(
            access_token=access_token,
            refresh_token=str(payload.get("refresh_token") or ""),
            token_type=str(payload.get("token_type") or ""),
            scope=str(payload.get("scope") or ""),
            expires_in=expires_in,
            extra=extra,
        )


def _fill(template: str, config: dict[str, Any], what: str) -> str:
    values = {key: value for key, value in config.items() if isinstance(value, str)}
    try:
        return template.format_map(values)
    except KeyError as missing:
        raise ApplicationError(f"The integration's config lacks {missing.args[0]!r}, needed for the {what}.") from None


def resolve_client(integration: Integration, *, redirect_uri: str | None = None) -> OAuthClient:
    """The OAuth client for an integration: catalogue entry + config + env/integration secrets."""
    provider = integration.provider_info
    if provider is None or integration.auth_type != providers.OAUTH2 or not provider.supports_oauth2:
        raise ApplicationError("This integration does not use OAuth 2.0.")
    config = integration.config or {}
    credentials = integration.credentials or {}
    own_app = provider.name == "custom" or bool(config.get("client_id"))
    if own_app:
        client_id = config.get("client_id", "")
        client_secret = credentials.get("client_secret", "")
    else:
        client_id = app_settings.client_id(provider.env_prefix)
        client_secret = app_settings.client_secret(provider.env_prefix)
    if not client_id:
        hint = f"set {provider.env_prefix}_CLIENT_ID or " if provider.env_prefix and provider.name != "custom" else ""
        raise ApplicationError(f"No OAuth client configured for {provider.name}: {hint}set config.client_id.")
    use_pkce = config.get("use_pkce")
    return OAuthClient(
        provider=provider,
        client_id=client_id,
        client_secret=client_secret,
        authorization_url=_fill(provider.authorization_url, config, "authorization URL"),
        token_url=_fill(provider.token_url, config, "token URL"),
        refresh_url=_fill(provider.refresh_url, config, "refresh URL") if provider.refresh_url else "",
        redirect_uri=redirect_uri
        or config.get("redirect_uri")
        or app_settings.redirect_uri(provider.env_prefix if provider.name != "custom" else ""),
        scopes=tuple(config.get("scopes") or provider.default_scopes),
        use_pkce=provider.supports_pkce if use_pkce is None else bool(use_pkce),
        token_auth_method=config.get("token_auth_method") or provider.token_auth_method,
        extra_authorize_params=dict(provider.extra_authorize_params),
    )


def new_pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)  # 86 characters from the unreserved set
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge
