"""Hardened outbound HTTP sessions, shared by every app that calls user-supplied URLs.

requests-hardened checks the resolved address at connect time and pins the connection
to it (DNS rebinding cannot swap in a private address), redirects are never followed,
and every request has a default timeout. Environment proxies, `.netrc` and cookies are
off, so nothing of the host or of one receiver leaks into another request. Sessions are
pooled (keep-alive) and cached per process, keyed by what configures them.
"""

from __future__ import annotations

import http.cookiejar
import threading
from collections.abc import Callable, Hashable

import requests
from requests.adapters import HTTPAdapter
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

__all__ = ["InvalidIPAddress", "cached_session", "hardened_session"]

POOL_CONNECTIONS = 16

_lock = threading.Lock()
_sessions: dict[Hashable, requests.Session] = {}


class PooledIPFilterAdapter(IPFilterAdapter):
    """requests-hardened's connect-time address filter with a pool sized for concurrency."""

    def __init__(self, *, pool_maxsize: int, **kwargs):
        super().__init__(**kwargs)
        self._pool_connections = POOL_CONNECTIONS
        self._pool_maxsize = pool_maxsize
        self.init_poolmanager(POOL_CONNECTIONS, pool_maxsize, block=False)


def hardened_session(
    *, allow_private: bool, user_agent: str, timeout: float, pool_maxsize: int = 10
) -> requests.Session:
    config = Config(
        ip_filter_enable=False,  # the pooled filter adapter is mounted below
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(timeout, timeout),
        user_agent_override=user_agent,
    )
    session = HTTPSession(config)
    for scheme in ("http://", "https://"):
        if allow_private:
            adapter = HTTPAdapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=pool_maxsize)
        else:
            adapter = PooledIPFilterAdapter(is_https_proto=scheme == "https://", pool_maxsize=pool_maxsize)
        session.mount(scheme, adapter)
    session.trust_env = False
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def cached_session(key: Hashable, factory: Callable[[], requests.Session]) -> requests.Session:
    """The process's session for `key`, built once by `factory` (thread-safe)."""
    session = _sessions.get(key)
    if session is None:
        with _lock:
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = factory()
    return session
