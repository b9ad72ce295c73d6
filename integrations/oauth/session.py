"""requests-oauthlib's `OAuth2Session`, sending every request through our hardened session.

`OAuth2Session` builds the OAuth requests (authorization URL with PKCE, token and refresh
bodies, client authentication) and parses token answers; the bytes go out through the
session `integrations.http.get_session()` returns: SSRF pinning at connect time, no
redirects, a default timeout and a whole-request deadline (`common.http`), no environment
proxies or .netrc.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import requests
from oauthlib.oauth2 import WebApplicationClient
from requests_oauthlib import OAuth2Session

from integrations.http import get_session

USER_AGENT = "integrations-oauth/1.0"

# oauthlib refuses http:// endpoints unless this is set. Which endpoints we call is decided
# by our own URL policy instead, the same for every outbound URL: checked when the config is
# saved (`integrations.validation`), again at connect time (the hardened session), with
# private addresses only under the private-URLs setting. Catalogue endpoints are https.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


class _DebugRecordsDropped(logging.Filter):
    """requests-oauthlib logs request bodies (client secret, code, refresh token) and the
    tokens it obtained at DEBUG. Those records never reach a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger("requests_oauthlib.oauth2_session").addFilter(_DebugRecordsDropped())


class _Transport(requests.Session):
    """Where `OAuth2Session.request` ends up (its `super().request`): our hardened session."""

    transport: requests.Session

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        return self.transport.request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        raise RuntimeError("OAuth requests go through request(), i.e. the hardened session.")


class ProviderSession(OAuth2Session, _Transport):
    """An `OAuth2Session` for one provider call; requests go out through `transport`."""

    def __init__(self, client: WebApplicationClient, *, transport: requests.Session | None = None, **kwargs: Any):
        super().__init__(client=client, **kwargs)
        self.transport = transport if transport is not None else get_session(USER_AGENT)
        self.trust_env = False
