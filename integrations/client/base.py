"""Where an integration's API lives: the base URL every relative path is joined to.

- `template` (most providers): `Provider.api_base_url`, filled from the config (BambooHR
  `{company_domain}`, Workday `{api_domain}`, custom `{api_base_url}`; config defaults
  apply). `Provider.path_params` (Workday `{tenant}`) come from the config too.
- `userinfo_accounts` (DocuSign): the account's `base_uri` from the userinfo endpoint
  (`accounts[]`: `config.account_id` picks one, else the default account) plus
  `api_base_suffix` (`/restapi`); it must be https on `Provider.api_hosts`. Kept in this
  process's memory per integration and account for `INTEGRATIONS_CLIENT_BASE_URL_TTL`
  seconds (default 1 h), so the userinfo call is not repeated per request.
"""

from __future__ import annotations

import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.exceptions import ApplicationError
from integrations import app_settings
from integrations.providers.hosts import confined_host

from .errors import ProviderError

if TYPE_CHECKING:
    from .client import IntegrationClient


@dataclass(frozen=True)
class ApiBase:
    url: str
    #: values for `{name}` placeholders in paths
    path_values: dict[str, str] = field(default_factory=dict)


_lock = threading.Lock()
_discovered: dict[tuple[uuid.UUID, str], tuple[float, ApiBase]] = {}


def forget() -> None:
    with _lock:
        _discovered.clear()


def _fill(client: IntegrationClient, template: str, what: str) -> str:
    provider, config = client.provider, client.integration.config or {}
    values = {}
    for _, name, _, _ in string.Formatter().parse(template):
        if not name:
            continue
        spec = provider.config_field(name)
        value = config.get(name, spec.default if spec else None)
        if not isinstance(value, str) or not value:
            raise ApplicationError(f"Cannot call {provider.display_name}: config.{name} is missing ({what}).")
        values[name] = value
    return template.format_map(values)


def _config_path_values(client: IntegrationClient) -> dict[str, str]:
    config = client.integration.config or {}
    return {
        name: config[name] for name in client.provider.path_params if isinstance(config.get(name), str) and config[name]
    }


def resolve_base(client: IntegrationClient) -> ApiBase:
    provider = client.provider
    if provider.api_base_source == "userinfo_accounts":
        return _userinfo_base(client)
    if not provider.api_base_url:
        raise ApplicationError(f"{provider.display_name} has no API the client can call.")
    url = _fill(client, provider.api_base_url, "the API base URL")
    return ApiBase(url.rstrip("/") + provider.api_base_suffix, _config_path_values(client))


def _userinfo_base(client: IntegrationClient) -> ApiBase:
    provider, integration = client.provider, client.integration
    wanted = str((integration.config or {}).get("account_id") or "")
    key = (integration.pk, wanted)
    cached = _discovered.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    userinfo_url = _fill(client, provider.userinfo_url, "the userinfo URL")
    response = client._send("GET", userinfo_url, log_path="oauth/userinfo")
    body = response.json() if response.content else None
    accounts = body.get("accounts") if isinstance(body, dict) else None
    accounts = [a for a in accounts if isinstance(a, dict)] if isinstance(accounts, list) else []
    if wanted:
        chosen = next((a for a in accounts if str(a.get("account_id")) == wanted), None)
        if chosen is None:
            raise ApplicationError(f"The {provider.display_name} user has no account {wanted!r} (config.account_id).")
    else:
        chosen = next((a for a in accounts if a.get("is_default") is True), accounts[0] if accounts else None)
    if chosen is None:
        raise ProviderError(f"{provider.display_name}'s userinfo lists no account.", kind="provider_error")
    base_uri = chosen.get("base_uri")
    if not isinstance(base_uri, str) or confined_host(base_uri, provider.api_hosts) is not None:
        raise ProviderError(
            f"{provider.display_name}'s account base URI is not https on {', '.join(provider.api_hosts)}: refused.",
            kind="refused",
        )
    values = _config_path_values(client)
    values["account_id"] = str(chosen.get("account_id") or "")
    base = ApiBase(base_uri.rstrip("/") + provider.api_base_suffix, values)
    with _lock:
        _discovered[key] = (time.monotonic() + app_settings.client_base_url_ttl(), base)
    return base
