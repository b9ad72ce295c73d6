"""One pooled HTTP session per process for health checks (shared by the run's threads).

Unless `HEALTH_ALLOW_PRIVATE_URLS` is on, connections to loopback, private, link-local or
reserved addresses are refused at connect time (requests-hardened resolves the host and pins
the connection to the checked address): a custom `health_check_url` must not let a tenant
probe our internal network. Redirects are not followed; every request has a timeout.
"""

from __future__ import annotations

import threading

import requests
from requests.adapters import HTTPAdapter
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from . import app_settings

_lock = threading.Lock()
_sessions: dict[tuple, requests.Session] = {}


class _PooledIPFilterAdapter(IPFilterAdapter):
    def __init__(self, *, pool_maxsize: int, **kwargs):
        super().__init__(**kwargs)
        self._pool_connections = 16
        self._pool_maxsize = pool_maxsize
        self.init_poolmanager(16, pool_maxsize, block=False)


def _build(*, allow_private: bool, pool_maxsize: int) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials from the environment
    session.headers["User-Agent"] = app_settings.user_agent()
    if allow_private:
        session.mount("http://", HTTPAdapter(pool_connections=16, pool_maxsize=pool_maxsize))
        session.mount("https://", HTTPAdapter(pool_connections=16, pool_maxsize=pool_maxsize))
    else:
        session.mount("http://", _PooledIPFilterAdapter(is_https_proto=False, pool_maxsize=pool_maxsize))
        session.mount("https://", _PooledIPFilterAdapter(is_https_proto=True, pool_maxsize=pool_maxsize))
    return session


def get_session() -> requests.Session:
    """The process's health-check session (rebuilt when the relevant settings change)."""
    key = (app_settings.allow_private_urls(), app_settings.concurrency())
    session = _sessions.get(key)
    if session is None:
        with _lock:
            session = _sessions.get(key)
            if session is None:
                session = _build(allow_private=key[0], pool_maxsize=key[1])
                _sessions[key] = session
    return session
