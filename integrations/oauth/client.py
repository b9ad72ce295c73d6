"""The OAuth 2.0 client: endpoints and client credentials for an integration, token requests.

Provider differences come from the catalogue (`integrations.providers`) and the
integration's config. requests-oauthlib (`session.ProviderSession`) builds the requests
(RFC 6749, RFC 7636 PKCE S256) and reads token answers; this module adds what it leaves
to us: client authentication per provider, Slack's `ok: false` answers, and the mapping
of failures to `OAuthError` (the provider refused: 400) or `OAuthUpstreamError` (the
provider failed: 502), with secrets redacted from every message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient

from common.exceptions import ApplicationError, ConflictError, UpstreamError
from common.redaction import redact
from common.text import printable, quoted
from integrations import app_settings, providers
from integrations.http import InvalidIPAddress, ResponseTooLarge
from integrations.models import UNREADABLE_CREDENTIALS, Integration
from integrations.providers.hosts import shared_app_refusal, uses_shared_app

from .session import ProviderSession

#: token-endpoint errors meaning the grant (code or refresh token) is dead for good
TERMINAL_GRANT_ERRORS = {"invalid_grant", "invalid_refresh_token", "invalid_code", "code_already_used"}
MAX_PROVIDER_TEXT = 300
MAX_ERROR_CODE = 100


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


class TokenEndpointNotPublic(OAuthError):
    """The token endpoint resolves to a private or reserved address (refused at connect
    time): a configuration to fix, issue `config_invalid` (integrations/detectors.py)."""

    def __init__(self, url: str):
        super().__init__(
            f"The token endpoint is not on a public address ({url}); set ALLOW_PRIVATE_URLS for a private one.",
            error="private_address",
        )


class TokenEndpointRateLimited(OAuthError):
    """The token endpoint answered 429: issue `rate_limited`, no new attempt before
    `retry_after` seconds when it said (`Retry-After`)."""

    def __init__(self, message: str, *, error: str = "", retry_after: int | None = None):
        super().__init__(message, error=error)
        self.retry_after = retry_after


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
class AuthorizationRequest:
    url: str
    #: the PKCE verifier to keep until the callback ("" without PKCE)
    code_verifier: str = field(repr=False)


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

    def authorization_request(self, *, state: str, code_verifier: str = "") -> AuthorizationRequest:
        """The provider's authorization URL for `state` (with an S256 challenge under PKCE:
        of `code_verifier` when given, i.e. the same URL again, else of a new verifier)."""
        oauth = WebApplicationClient(self.client_id)
        # Joined here: oauthlib would join a list with spaces, Slack wants commas.
        scope = self.provider.scope_separator.join(self.scopes) or None
        params = dict(self.extra_authorize_params)
        pkce = "S256" if self.use_pkce and not code_verifier else None
        if self.use_pkce and code_verifier:
            params["code_challenge_method"] = "S256"
            params["code_challenge"] = oauth.create_code_challenge(
                code_verifier=code_verifier, code_challenge_method="S256"
            )
        with ProviderSession(oauth, redirect_uri=self.redirect_uri, scope=scope, pkce=pkce) as session:
            url, _ = session.authorization_url(self.authorization_url, state=state, **params)
        verifier = code_verifier or ((oauth.code_verifier or "") if pkce else "")
        return AuthorizationRequest(url=url, code_verifier=verifier if self.use_pkce else "")

    # --- token endpoint -------------------------------------------------------------

    def exchange_code(self, *, code: str, code_verifier: str = "") -> TokenSet:
        hidden = [self.client_secret, code, code_verifier]
        extra: dict[str, Any] = {"code_verifier": code_verifier} if code_verifier else {}
        if self._basic_auth():
            client_auth: dict[str, Any] = {"auth": (self.client_id, self.client_secret)}
        else:  # client_secret_post, or a public client (no secret): client_id in the body
            client_auth = {"include_client_id": True, "client_secret": self.client_secret or None}
        with self._session("access_token_response", hidden) as session:
            return self._token_request(
                lambda: session.fetch_token(self.token_url, code=code, **client_auth, **extra), self.token_url, hidden
            )

    def refresh(self, *, refresh_token: str) -> TokenSet:
        url = self.refresh_url or self.token_url
        hidden = [self.client_secret, refresh_token]
        if self._basic_auth():
            client_auth: dict[str, Any] = {"auth": (self.client_id, self.client_secret)}
        else:
            client_auth = {"client_id": self.client_id}
            if self.client_secret:
                client_auth["client_secret"] = self.client_secret
        with self._session("refresh_token_response", hidden) as session:
            return self._token_request(
                lambda: session.refresh_token(url, refresh_token=refresh_token, **client_auth), url, hidden
            )

    def _basic_auth(self) -> bool:
        return self.token_auth_method == providers.CLIENT_SECRET_BASIC and bool(self.client_secret)

    def _session(
        self, hook: Literal["access_token_response", "refresh_token_response"], hidden: list[str]
    ) -> ProviderSession:
        # No scope on token requests: nothing to add to the body, and oauthlib then takes the
        # granted scope as it comes instead of raising when it differs from the requested one.
        session = ProviderSession(WebApplicationClient(self.client_id), redirect_uri=self.redirect_uri)
        pairs = [(self.client_id, self.client_secret)] if self.client_secret else []
        session.register_compliance_hook(hook, lambda response: _checked(response, hidden, pairs))
        return session

    def _token_request(self, send: Callable[[], dict[str, Any]], url: str, hidden: list[str]) -> TokenSet:
        try:
            token = send()
        except InvalidIPAddress:
            # SSRF protection at connect time: the endpoint resolves to a non-public address now.
            raise TokenEndpointNotPublic(url) from None
        except requests.Timeout:
            raise OAuthUpstreamError(f"The provider's token endpoint timed out ({url}).") from None
        except ResponseTooLarge as error:  # read no further than the limit (decoded bytes)
            raise OAuthUpstreamError(
                f"The provider's token endpoint answered too large: more than {error.limit} bytes once decoded ({url})."
            ) from None
        except requests.RequestException as error:
            raise OAuthUpstreamError(
                f"Could not reach the provider's token endpoint ({type(error).__name__}, {url})."
            ) from None
        except (OAuth2Error, ValueError, Warning):  # oauthlib could not read an answer `_checked` let through
            raise OAuthUpstreamError("The provider's token response could not be read.") from None
        return _token_set(token)


def _checked(response: requests.Response, hidden: list[str], pairs: list[tuple[str, str]]) -> requests.Response:
    """The token endpoint's answer, if it is a token; else the error it maps to.

    Runs as requests-oauthlib's response hook, before oauthlib parses the body: a 5xx or an
    unreadable answer is the provider failing, an OAuth error body (or Slack's HTTP 200
    with `ok: false`) or another 4xx is the provider refusing. Messages carry only the HTTP
    status and the provider's error code and description, control characters replaced (see
    `common.text.printable`), redacted (with `base64(client_id:
    client_secret)` as sent in a Basic header) before they are cut: never the raw body.
    """
    status = response.status_code
    if status >= 500:
        raise OAuthUpstreamError(f"The provider answered HTTP {status}.")
    if status == 429:
        header = response.headers.get("Retry-After", "").strip()
        retry_after = int(header) if header.isdigit() else None
        when = f"; retry after {retry_after} s" if retry_after is not None else ""
        raise TokenEndpointRateLimited(
            f"The provider's token endpoint is rate limiting requests (HTTP 429{when}).",
            error="http_429",
            retry_after=retry_after,
        )
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        if response.ok:
            raise OAuthUpstreamError("The provider's token endpoint answered no JSON object.")
        raise OAuthError(f"The provider refused the request (HTTP {status}).")
    error = payload.get("error")
    if not response.ok or error or payload.get("ok") is False:
        # The provider's words, redacted first (a secret echoed with its line breaks must
        # still match), then without control characters (a NUL would abort the failure's record).
        error_code = printable(redact(str(error or f"http_{status}"), hidden, basic_pairs=pairs))[:MAX_ERROR_CODE]
        description = payload.get("error_description")
        text = f"{error or f'http_{status}'}: {description}" if isinstance(description, str) else str(error_code)
        message = printable(redact(text.rstrip(": "), hidden, basic_pairs=pairs))[:MAX_PROVIDER_TEXT]
        raise OAuthError(f"The provider refused the request: {message}", error=error_code)
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuthUpstreamError("The provider's token response has no access_token.")
    return response


def _token_set(token: dict[str, Any]) -> TokenSet:
    """Our record of oauthlib's token (which has the scope as a list, `expires_in` as an int)."""
    scope = token.get("scope") or ""
    if isinstance(scope, (list, tuple, set)):
        scope = " ".join(scope)
    expires_in = token.get("expires_in")
    return TokenSet(
        access_token=token["access_token"],
        refresh_token=str(token.get("refresh_token") or ""),
        token_type=str(token.get("token_type") or ""),
        scope=str(scope),
        expires_in=expires_in if isinstance(expires_in, int) else None,
        extra={k: v for k, v in token.items() if k == "id_token" and isinstance(v, str)},
    )


def _fill(template: str, config: dict[str, Any], what: str) -> str:
    values = {key: value for key, value in config.items() if isinstance(value, str)}
    try:
        return template.format_map(values)
    except KeyError as missing:
        raise ApplicationError(
            f"The integration's config lacks {quoted(missing.args[0])}, needed for the {what}."
        ) from None


def resolve_client(integration: Integration, *, redirect_uri: str | None = None) -> OAuthClient:
    """The OAuth client for an integration: catalogue entry + config + env/integration secrets."""
    provider = integration.provider_info
    if provider is None or integration.auth_type != providers.OAUTH2 or not provider.supports_oauth2:
        raise ApplicationError("This integration does not use OAuth 2.0.")
    config: dict[str, Any] = integration.config or {}
    if not uses_shared_app(provider, integration.auth_type, config):  # the integration's own OAuth app
        if not integration.credentials_readable:
            raise ConflictError(UNREADABLE_CREDENTIALS)
        credentials: dict[str, Any] = integration.credentials or {}
        client_id = config.get("client_id", "")
        client_secret = credentials.get("client_secret", "")
    else:
        # Checked at save time too; again here, before anything is built or sent, for rows
        # saved before the rule or written around the services.
        refusal = shared_app_refusal(provider, integration.auth_type, config)
        if refusal:
            raise ApplicationError(refusal, errors={"config": {"client_id": [refusal]}})
        client_id = app_settings.client_id(provider.env_prefix)
        client_secret = app_settings.client_secret(provider.env_prefix)
    if not client_id:
        hint = f"set {provider.env_prefix}_CLIENT_ID or " if provider.has_shared_oauth_app else ""
        raise ApplicationError(f"No OAuth client configured for {provider.name}: {hint}set config.client_id.")
    use_pkce = config.get("use_pkce")
    return OAuthClient(
        provider=provider,
        client_id=client_id,
        client_secret=client_secret,
        authorization_url=_fill(provider.authorization_url, config, "authorization URL"),
        token_url=_fill(provider.token_url, config, "token URL"),
        refresh_url=_fill(provider.refresh_url, config, "refresh URL") if provider.refresh_url else "",
        redirect_uri=redirect_uri or config.get("redirect_uri") or app_settings.redirect_uri(provider.env_prefix),
        scopes=tuple(config.get("scopes") or provider.default_scopes),
        use_pkce=provider.supports_pkce if use_pkce is None else bool(use_pkce),
        token_auth_method=config.get("token_auth_method") or provider.token_auth_method,
        extra_authorize_params=dict(provider.extra_authorize_params),
    )
