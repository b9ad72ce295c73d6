"""One pooled, hardened HTTP session per process for webhook deliveries (`common/http.py`)."""

from __future__ import annotations

import requests

from common.http import cached_session, hardened_session

from . import app_settings


def get_session() -> requests.Session:
    """The process's delivery session (rebuilt when the settings it depends on change)."""
    allow, size, timeout = (
        app_settings.allow_private_urls(),
        app_settings.send_concurrency(),
        app_settings.request_timeout(),
    )
    return cached_session(
        ("webhooks", allow, size, timeout),
        lambda: hardened_session(
            allow_private=allow, user_agent=app_settings.user_agent(), timeout=timeout, pool_maxsize=max(size, 1)
        ),
    )
