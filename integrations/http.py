"""One hardened `requests.Session` per outside-service kind, always with a timeout.

Every endpoint an integration talks to may be shaped by its config (custom token and
health-check URLs, Workday/DocuSign domains), so requests go through requests-hardened:
the resolved address is checked at connect time and the connection pinned to it (no DNS
rebinding to a private address), unless `ALLOW_PRIVATE_URLS` is true.
Redirects are never followed; environment proxies and .netrc are ignored. Answers are
read capped at `INTEGRATIONS_MAX_RESPONSE_BYTES` decoded bytes (`common.http.read_capped`),
so a provider's gzip bomb fails as `ResponseTooLarge` instead of filling the worker's memory.
"""

from __future__ import annotations

import requests

from common.http import InvalidIPAddress, ResponseTooLarge, cached_session, hardened_session

from . import app_settings

__all__ = ["InvalidIPAddress", "ResponseTooLarge", "get_session", "make_session"]


def make_session(user_agent: str) -> requests.Session:
    """A fresh session (prefer `get_session`, which follows the settings)."""
    return hardened_session(
        allow_private=app_settings.allow_private_urls(),
        user_agent=user_agent,
        timeout=app_settings.http_timeout(),
        max_response_bytes=app_settings.max_response_bytes(),
    )


def get_session(user_agent: str) -> requests.Session:
    """The process's session for this kind of service (rebuilt when its settings change)."""
    key = (
        "integrations",
        user_agent,
        app_settings.allow_private_urls(),
        app_settings.http_timeout(),
        app_settings.max_response_bytes(),
    )
    return cached_session(key, lambda: make_session(user_agent))
