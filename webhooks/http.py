"""One pooled HTTP session per process for webhook deliveries.

requests-hardened checks the resolved address at connect time and pins the connection
to it (DNS rebinding cannot swap in a private address), never follows redirects, and
sets a default timeout. Cookies, proxies from the environment and .netrc are disabled so
that nothing of one receiver or of the host leaks into another delivery.
"""

from __future__ import annotations

import http.cookiejar
import threading

import requests
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from . import app_settings

_local = threading.local()
_lock = threading.Lock()
_sessions: dict[tuple, requests.Session] = {}


class PooledIPFilterAdapter(IPFilterAdapter):
    def __init__(self, *, pool_maxsize: int, **kwargs):
        super().__init__(**kwargs)
        self._pool_connections = 16
        self._pool_maxsize = pool_maxsize
        self.init_poolmanager(16, pool_maxsize, block=False)


def _build_session(*, allow_private: bool, pool_maxsize: int) -> requests.Session:
    config = Config(
        ip_filter_enable=not allow_private,
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(app_settings.request_timeout(), app_settings.request_timeout()),
        user_agent_override=app_settings.user_agent(),
    )
    session = HTTPSession(config)
    if allow_private:
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=pool_maxsize)
    else:
        session.mount("http://", PooledIPFilterAdapter(is_https_proto=False, pool_maxsize=pool_maxsize))
        adapter = PooledIPFilterAdapter(is_https_proto=True, pool_maxsize=pool_maxsize)
        session.mount("https://", adapter)
        return _harden(session)
    session.mount("http://", adapter)
    session.mount("https://", requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=pool_maxsize))
    return _harden(session)


def _harden(session: requests.Session) -> requests.Session:
    session.trust_env = False  # no proxies or .netrc credentials from the environment
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def get_session() -> requests.Session:
    """The process's delivery session (rebuilt if the private-URL setting changes)."""
    key = (app_settings.allow_private_urls(), app_settings.send_concurrency(), app_settings.request_timeout())
    session = _sessions.get(key)
    if session is None:
        with _lock:
            session = _sessions.get(key)
            if session is None:
                session = _build_session(allow_private=key[0], pool_maxsize=max(key[1], 1))
                _sessions[key] = session
    return session
