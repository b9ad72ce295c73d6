"""One hardened `requests.Session` per outside-service kind, always with a timeout.

Every endpoint an integration talks to may be shaped by its config (custom token and
health-check URLs, Workday/DocuSign domains), so requests go through requests-hardened:
the resolved address is checked at connect time and the connection pinned to it (no DNS
rebinding to a private address), unless `INTEGRATIONS_ALLOW_PRIVATE_URLS` is true.
Redirects are never followed; environment proxies and .netrc are ignored.
"""

from __future__ import annotations

import threading

import requests
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress

from . import app_settings

__all__ = ["InvalidIPAddress", "get_session", "make_session"]

_lock = threading.Lock()
_sessions: dict[tuple, requests.Session] = {}


class TimeoutSession(HTTPSession):
    """Requests default to `app_settings.http_timeout()` seconds and never follow redirects."""

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", app_settings.http_timeout())
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def _build(user_agent: str, *, allow_private: bool) -> requests.Session:
    timeout = app_settings.http_timeout()
    config = Config(
        ip_filter_enable=not allow_private,  # mounts requests-hardened's IPFilterAdapter
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(timeout, timeout),
        user_agent_override=user_agent,
    )
    session = TimeoutSession(config)
    session.trust_env = False  # no proxies or .netrc credentials from the environment
    return session


def get_session(user_agent: str) -> requests.Session:
    """The process's session for this kind of service (rebuilt if the private-URL setting changes)."""
    key = (user_agent, app_settings.allow_private_urls())
    session = _sessions.get(key)
    if session is None:
        with _lock:
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = _build(user_agent, allow_private=key[1])
    return session


def make_session(user_agent: str) -> requests.Session:
    """A fresh session (prefer `get_session`, which follows the settings)."""
    return _build(user_agent, allow_private=app_settings.allow_private_urls())
