"""One pooled, hardened HTTP session per process for health checks (shared by a run's
threads). Unless `ALLOW_PRIVATE_URLS` is on, connections to non-public addresses are
refused at connect time, so a custom `health_check_url` cannot probe our network
(`common/http.py`). Answers are read capped at `HEALTH_CHECK_MAX_RESPONSE_BYTES` decoded
bytes: a gzip bomb behind a custom URL cannot exhaust the worker."""

from __future__ import annotations

import requests

from common.http import cached_session, hardened_session

from . import app_settings


def get_session() -> requests.Session:
    """The process's health-check session (rebuilt when the relevant settings change)."""
    allow, size = app_settings.allow_private_urls(), app_settings.concurrency()
    timeout, limit = app_settings.timeout(), app_settings.max_response_bytes()
    return cached_session(
        ("health", allow, size, timeout, limit),
        lambda: hardened_session(
            allow_private=allow,
            user_agent=app_settings.user_agent(),
            timeout=timeout,
            pool_maxsize=max(size, 1),
            max_response_bytes=limit,
        ),
    )
