"""Minted tokens: access tokens obtained from a signed assertion instead of a refresh token.

- `jwt_bearer.py`: the JWT bearer grant (RFC 7523), for DocuSign, Google service accounts
  with domain-wide delegation and `custom` servers.
- `saml_bearer.py`: the SAML 2.0 bearer assertion grant (RFC 7522).

`mint_token(integration)` is called only by `integrations.oauth.tokens` under the
integration's row lock (the same race-free path as an OAuth refresh), and returns the
provider's answer as a `TokenSet`. Failures raise `OAuthError` (the provider refused: its
`error` decides whether re-authorization is needed) or `OAuthUpstreamError` (it failed).
"""

from __future__ import annotations

from common.exceptions import ApplicationError
from integrations import providers
from integrations.models import Integration
from integrations.oauth.client import TokenSet


def mint_token(integration: Integration) -> TokenSet:
    if integration.auth_type == providers.JWT:
        from .jwt_bearer import mint

        return mint(integration)
    if integration.auth_type == providers.SAML:
        from .saml_bearer import mint

        return mint(integration)
    raise ApplicationError(f"{integration.auth_type} integrations do not mint tokens.")


def consent_url(integration: Integration) -> str:
    """Where an admin grants the consent a minted token needs (DocuSign's JWT grant), or ""."""
    if integration.auth_type == providers.JWT:
        from .jwt_bearer import consent_url as jwt_consent_url

        return jwt_consent_url(integration)
    return ""
