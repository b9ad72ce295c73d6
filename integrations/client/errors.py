"""What a provider call can raise, typed so callers (and the proxy) act on the kind.

- `ProviderError`: the provider answered with a failure (`status`, its short error `code`,
  a redacted `message`), or could not be reached (`status` None). An `UpstreamError`, so
  the API answers 502 when platform code lets it through.
- `RateLimited`: the provider (429) or our own limiter refused; `retry_after` in seconds.
- `ReauthorizationRequired`: the integration's grant is gone (the token module's error).
- `PathRefused`: a path that is absolute or leaves the API's base URL (400; a ValueError).
"""

from __future__ import annotations

from http import HTTPStatus

from common.exceptions import ApplicationError, UpstreamError
from integrations.oauth.tokens import ReauthorizationRequired

__all__ = ["PathRefused", "ProviderError", "RateLimited", "ReauthorizationRequired"]


class ProviderError(UpstreamError):
    """A failed provider call. `status` is the provider's HTTP status (None: no answer),
    `code` its short error code (`invalid_auth`, `InvalidAuthenticationToken`), `kind` the
    call log's error kind. The message is redacted and holds no credential."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        kind: str = "provider_error",
    ):
        extra: dict = {"provider_status": status}
        if code:
            extra["provider_error"] = code
        super().__init__(message, extra=extra)
        self.status = status
        self.code = code
        self.kind = kind


class RateLimited(ProviderError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = 429, code: str = ""):
        super().__init__(message, status=status, code=code, kind="rate_limited")
        self.retry_after = retry_after
        self.extra["retry_after"] = retry_after


class PathRefused(ApplicationError, ValueError):
    """The path is not a relative path under the API's base URL."""
