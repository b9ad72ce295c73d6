"""The credential a provider call carries, per auth type and catalogue entry.

- OAuth2, JWT, SAML: `Authorization: Bearer` with `get_access_token` (refreshed or minted
  ahead of expiry); `force_refresh` refreshes now (after a 401). The platform's shared
  OAuth app's tokens go only to the provider's own hosts (`providers/hosts.py`).
- API key, as `Provider.api_auth` (else `health_check.auth`) says: `bearer` (`api_key` or
  `token`), `basic_api_key` (the key as Basic username, password `x`: BambooHR, Dropbox
  Sign) or `basic` (`username`/`password`: Workday). Query-parameter keys are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.exceptions import ApplicationError, ConflictError
from integrations import providers
from integrations.models import UNREADABLE_CREDENTIALS, Integration
from integrations.oauth.tokens import TOKEN_AUTH_TYPES, get_access_token, oauth_refresh_token
from integrations.providers.hosts import shared_app_refusal


@dataclass(frozen=True)
class Credential:
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    #: values to redact from anything shown
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: a 401 may be answered by refreshing (a token, not a static key)
    refreshable: bool = False


def credential_for(
    integration: Integration, provider: providers.Provider, *, force_refresh: bool = False
) -> Credential:
    if not integration.credentials_readable:
        raise ConflictError(UNREADABLE_CREDENTIALS)
    credentials = integration.credentials if isinstance(integration.credentials, dict) else {}
    auth_type = integration.auth_type
    if auth_type in TOKEN_AUTH_TYPES:
        refusal = shared_app_refusal(provider, auth_type, integration.config or {})
        if refusal:
            raise ApplicationError(refusal)
        if force_refresh:
            oauth_refresh_token(integration=integration, force=True)
            token = str((integration.credentials or {}).get("access_token") or "")
            if not token:
                raise ApplicationError("The refresh gave no access token.")
        else:
            token = get_access_token(integration)
        return Credential({"Authorization": f"Bearer {token}"}, None, (token,), refreshable=True)
    if auth_type != providers.API_KEY:
        raise ApplicationError(f"{auth_type} integrations cannot call the provider's API.")
    how = provider.api_auth or provider.health_check.auth
    if how == "basic":
        username, password = credentials.get("username"), credentials.get("password")
        if not (isinstance(username, str) and username and isinstance(password, str) and password):
            raise ApplicationError("This integration has no username and password.")
        return Credential({}, (username, password), (password,))
    if how == "query":
        raise ApplicationError(f"{provider.display_name} takes its key in query parameters: not supported.")
    key = credentials.get("api_key") or credentials.get("token")
    if not isinstance(key, str) or not key:
        raise ApplicationError("This integration has no API key.")
    if how == "basic_api_key":
        return Credential({}, (key, "x"), (key,))
    return Credential({"Authorization": f"Bearer {key}"}, None, (key,))
