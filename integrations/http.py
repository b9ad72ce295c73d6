"""One `requests.Session` per outside-service kind, always with a timeout."""

from __future__ import annotations

import requests

from . import app_settings


class TimeoutSession(requests.Session):
    """A Session whose requests default to `app_settings.http_timeout()` seconds."""

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", app_settings.http_timeout())
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url, *args, **kwargs)


def make_session(user_agent: str) -> TimeoutSession:
    session = TimeoutSession()
    session.headers["User-Agent"] = user_agent
    return session
