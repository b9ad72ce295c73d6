"""Sending a signed assertion to a token endpoint, and reading the answer (RFC 7521 section 4).

Shared by the assertion grants (`jwt_bearer.py`; the SAML bearer grant can use it too). The
request goes through the hardened session of `integrations.http` (SSRF pinning at connect
time, no redirects, the default timeout and a whole-request deadline, capped reads), and
the answer is judged by the same rules as an OAuth token answer
(`integrations.oauth.client._checked`): 5xx, no JSON object, no `access_token` →
`OAuthUpstreamError` (502, the refresh path backs off); an OAuth error body or another 4xx
→ `AssertionRefused` (400), terminal for the errors in `TERMINAL_ASSERTION_ERRORS`.
Every message is redacted against the assertion and the key material before it is cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from common.exceptions import ApplicationError
from common.text import printable
from integrations.http import InvalidIPAddress, ResponseTooLarge, get_session
from integrations.oauth.client import (
    TERMINAL_GRANT_ERRORS,
    OAuthError,
    OAuthUpstreamError,
    TokenEndpointNotPublic,
    TokenEndpointRateLimited,
    TokenSet,
)
from integrations.oauth.client import _checked as checked_token_answer

USER_AGENT = "integrations-oauth/1.0"
#: a minted token without `expires_in` is taken to last this long (re-minted after it less
#: the refresh margin): long enough not to mint on every call, short enough to recover
DEFAULT_EXPIRES_IN = 600
MAX_HINT = 400

#: token-endpoint errors after which minting again with the same key and claims cannot
#: succeed: an admin must grant something at the provider (DocuSign's consent, Google's
#: domain-wide delegation: `unauthorized_client`), a `reauthorization_required` issue.
#: `invalid_client` is not among them: the client itself is refused, as for every grant a
#: `credentials_rejected` issue (integrations/detectors.py), retried with backoff.
TERMINAL_ASSERTION_ERRORS = TERMINAL_GRANT_ERRORS | {"consent_required", "unauthorized_client"}


class AssertionRefused(OAuthError):
    """The token endpoint refused the assertion (400); `is_terminal` when retrying cannot help."""

    @property
    def is_terminal(self) -> bool:
        return self.error in TERMINAL_ASSERTION_ERRORS


class GrantConfigInvalid(ApplicationError):
    """The integration's config or key cannot produce an assertion (400): nothing was sent."""


def exchange_assertion(
    *,
    token_url: str,
    grant_type: str,
    assertion: str,
    params: Mapping[str, str] | None = None,
    hidden: list[str],
    hints: Mapping[str, str] | None = None,
) -> TokenSet:
    """POST `grant_type` + `assertion` (+ `params`) to `token_url`; the token it answers.

    `hidden` are the secrets to redact from every message (the assertion is added);
    `hints` maps an error code to a sentence for people (what to do), appended to it.
    """
    hidden = [assertion, *hidden]
    data = {"grant_type": grant_type, "assertion": assertion, **(params or {})}
    try:
        response = get_session(USER_AGENT).post(
            token_url, data=data, headers={"Accept": "application/json"}, allow_redirects=False
        )
    except InvalidIPAddress:
        raise TokenEndpointNotPublic(token_url) from None
    except requests.Timeout:
        raise OAuthUpstreamError(f"The token endpoint timed out ({token_url}).") from None
    except ResponseTooLarge as error:
        raise OAuthUpstreamError(
            f"The token endpoint answered too large: more than {error.limit} bytes once decoded ({token_url})."
        ) from None
    except requests.RequestException as error:
        raise OAuthUpstreamError(f"Could not reach the token endpoint ({type(error).__name__}, {token_url}).") from None
    try:
        checked_token_answer(response, hidden, [])
    except TokenEndpointRateLimited:
        raise  # not a refusal of the assertion
    except OAuthError as refused:
        hint = (hints or {}).get(refused.error, "")
        message = f"{refused.message} ({hint[:MAX_HINT]})" if hint else refused.message
        raise AssertionRefused(printable(message), error=refused.error) from None
    return _token_set(response.json())


def _token_set(payload: dict[str, Any]) -> TokenSet:
    expires_in = payload.get("expires_in")
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN
    scope = payload.get("scope")
    return TokenSet(
        access_token=payload["access_token"],
        token_type=str(payload.get("token_type") or "Bearer"),
        scope=" ".join(map(str, scope)) if isinstance(scope, list) else str(scope or ""),
        expires_in=expires_in,
    )
