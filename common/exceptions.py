"""Domain errors raised by services; the API exception handler maps them to 4xx."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ApplicationError(Exception):
    """A domain error with a user-facing message and an HTTP status for the API.

    The API answers `{"type": error_type, "title", "detail": message, "errors": errors, **extra}`
    (common/api/exceptions.py): `errors` holds field errors (`{"field": ["message"]}`, nested
    for nested fields), `extra` more context (`retry_after`, `event_id`...).
    """

    status_code: int = HTTPStatus.BAD_REQUEST
    #: the problem's `type` slug; None: derived from the status code
    error_type: str | None = None

    def __init__(
        self,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code


class ConflictError(ApplicationError):
    status_code = HTTPStatus.CONFLICT
    error_type = "conflict"


class UpstreamError(ApplicationError):
    """A third party failed (5xx, timeout, bad answer): 502 to our caller."""

    status_code = HTTPStatus.BAD_GATEWAY
    error_type = "upstream_error"
