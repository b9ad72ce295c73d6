"""Which hosts may see the platform's shared OAuth app (`<PREFIX>_CLIENT_ID`/`_SECRET`).

A provider with a shared app (`Provider.env_prefix`) declares its own hosts in the
catalogue (`Provider.own_hosts`: `"slack.com"` exactly, `"*.workday.com"` any subdomain of
workday.com, never the bare domain). The platform's client is used only when EVERY endpoint
URL of an integration (authorization, token, refresh, userinfo, revoke, health check, API
base: `Provider.endpoint_templates()`, filled from the config) is https on one of those
hosts. Otherwise the integration must bring its own OAuth app (`config.client_id` and
`credentials.client_secret`): refused with a 400 at create and update
(`integrations.validation`) and again before anything is sent (`oauth.client.resolve_client`,
the health check). A provider with a shared app and no declared hosts confines to nothing,
so every integration of it brings its own app (fail closed).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .schema import OAUTH2, Provider

# A DNS name as we accept it from a filled template: lower-case labels, no port, no userinfo.
_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """`host` is one of `patterns` (`"*.example.com"`: a subdomain of example.com, any depth)."""
    host = host.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def endpoint_urls(provider: Provider, config: Mapping[str, Any]) -> list[str]:
    """The integration's endpoint URLs, filled from its config (or the config field's default).

    A template whose placeholders are not all configured is skipped: that endpoint is not
    used (an optional `health_check_url`, `api_domain`), and a required one is reported by
    the config validation.
    """
    urls = []
    for template in provider.endpoint_templates():
        values: dict[str, str] = {}
        for name in _placeholders(template):
            spec = provider.config_field(name)
            value = config.get(name, spec.default if spec else None)
            if isinstance(value, str) and value:
                values[name] = value
        if len(values) == len(_placeholders(template)):
            urls.append(template.format_map(values))
    return urls


def confined_host(url: str, patterns: tuple[str, ...]) -> str | None:
    """None when `url` is https on one of `patterns`; else the host (or the URL) that is not."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = parts.netloc.lower()
    except ValueError:
        return url
    # The whole authority must be the host: no port, no userinfo, nothing a parser could
    # read differently from the check.
    if parts.scheme != "https" or netloc != host or not _HOSTNAME.match(host):
        return netloc or url
    return None if host_matches(host, patterns) else host


def uses_shared_app(provider: Provider, auth_type: str, config: Mapping[str, Any]) -> bool:
    """Whether this integration would use the platform's OAuth app (it brings no `client_id`)."""
    return auth_type == OAUTH2 and provider.has_shared_oauth_app and not config.get("client_id")


def foreign_hosts(provider: Provider, config: Mapping[str, Any]) -> list[str]:
    """The hosts of this integration's endpoints that are not the provider's own."""
    found = []
    for url in endpoint_urls(provider, config):
        host = confined_host(url, provider.own_hosts)
        if host is not None and host not in found:
            found.append(host)
    return found


def shared_app_refusal(provider: Provider, auth_type: str, config: Mapping[str, Any]) -> str | None:
    """Why this integration may not use the platform's OAuth app, or None when it may."""
    if not uses_shared_app(provider, auth_type, config):
        return None
    foreign = foreign_hosts(provider, config)
    if not foreign:
        return None
    return (
        f"Endpoints on {', '.join(sorted(foreign))} are not {provider.display_name}'s own hosts "
        f"({', '.join(provider.own_hosts) or 'none declared'}): the platform's OAuth app is not sent there. "
        "Bring your own OAuth app: set config.client_id and credentials.client_secret."
    )
