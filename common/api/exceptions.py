"""One exception handler for the whole API (DRF `EXCEPTION_HANDLER`), one error shape.

Domain and validation errors become clear 4xx bodies; nothing a client sends may produce
a 500. Every error body, here and in common/api/handlers.py, is a problem document in the
spirit of RFC 9457 (docs/API.md "Errors"):

    {"type": "validation_error", "title": "Invalid input",
     "detail": "name: This field is required.", "errors": {"name": ["This field is required."]}}

- `type`: a stable slug (`ERROR_TYPES`) clients branch on;
- `title`: the type in words; `detail`: this occurrence in words;
- `errors`: field errors, `{field: [messages]}`, nested fields as dotted paths
  (`config.tenant`, `events.0`); `{}` when the error is about no field;
- more context keys an `ApplicationError` adds (`retry_after`, `event_id`...).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from common.exceptions import ApplicationError, ConflictError
from common.fields import UndecryptableValueError

logger = logging.getLogger(__name__)

#: every `type` the API answers, with its `title`
ERROR_TYPES = {
    "validation_error": "Invalid input",
    "parse_error": "Malformed request body",
    "bad_request": "Bad request",
    "not_authenticated": "Authentication required",
    "authentication_failed": "Authentication failed",
    "permission_denied": "Permission denied",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "not_acceptable": "Not acceptable",
    "conflict": "Conflict",
    "payload_too_large": "Request body too large",
    "unsupported_media_type": "Unsupported media type",
    "rate_limited": "Too many requests",
    "server_error": "Internal server error",
    "upstream_error": "Upstream service failed",
    "unavailable": "Service unavailable",
}
#: the `type` values, for the schema's `ErrorTypeEnum` (config/settings/base.py)
ERROR_TYPE_CHOICES = list(ERROR_TYPES)
_TYPE_BY_STATUS = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.UNAUTHORIZED: "authentication_failed",
    HTTPStatus.FORBIDDEN: "permission_denied",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.NOT_ACCEPTABLE: "not_acceptable",
    HTTPStatus.CONFLICT: "conflict",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limited",
    HTTPStatus.INTERNAL_SERVER_ERROR: "server_error",
    HTTPStatus.BAD_GATEWAY: "upstream_error",
    HTTPStatus.SERVICE_UNAVAILABLE: "unavailable",
}
_TYPE_BY_EXCEPTION: tuple[tuple[type[Exception], str], ...] = (
    (exceptions.ValidationError, "validation_error"),
    (exceptions.ParseError, "parse_error"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.Throttled, "rate_limited"),
)


def error_type_for_status(status_code: int) -> str:
    return _TYPE_BY_STATUS.get(HTTPStatus(status_code), "server_error" if status_code >= 500 else "bad_request")


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """`{"config": {"tenant": ["..."]}}` -> `{"config.tenant": ["..."]}`; messages as plain strings."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = str(key)
            if name == api_settings.NON_FIELD_ERRORS_KEY and prefix:
                name = ""
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            for field, messages in flatten_errors(value, path).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(errors, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in errors):
            flat[prefix] = [str(item) for item in errors]
        else:  # a list of nested errors (many=True): positions as path segments
            for index, item in enumerate(errors):
                if item:
                    for field, messages in flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)).items():
                        flat.setdefault(field, []).extend(messages)
    elif errors is not None and errors != "":
        flat[prefix] = [str(errors)]
    return flat


def problem(
    *,
    status_code: int,
    detail: str,
    error_type: str | None = None,
    errors: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The error body every API error answers (see the module docstring)."""
    slug = error_type or error_type_for_status(status_code)
    body: dict[str, Any] = {
        "type": slug,
        "title": ERROR_TYPES.get(slug, ERROR_TYPES[error_type_for_status(status_code)]),
        "detail": detail,
        "errors": flatten_errors(errors) if errors else {},
    }
    for key, value in extra.items():
        body.setdefault(key, value)
    return body


def _summary(errors: dict[str, list[str]]) -> str:
    """One line for `detail`: the first field error, and how many more there are."""
    field, messages = next(iter(errors.items()))
    first = f"{field}: {messages[0]}" if field and field != api_settings.NON_FIELD_ERRORS_KEY else messages[0]
    more = sum(len(m) for m in errors.values()) - 1
    return f"{first} (and {more} more)" if more else first


def _validation_body(data: Any, status_code: int) -> dict[str, Any]:
    errors = flatten_errors(data if isinstance(data, dict) else {api_settings.NON_FIELD_ERRORS_KEY: data})
    non_field = errors.pop(api_settings.NON_FIELD_ERRORS_KEY, None) or errors.pop("", None)
    if non_field:
        detail = " ".join(non_field)
    elif errors:
        detail = _summary(errors)
    else:
        detail = "Invalid input."
    return problem(status_code=status_code, error_type="validation_error", detail=detail, errors=errors)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, UndecryptableValueError):
        # A value no key in FERNET_KEYS decrypts was needed (common/fields.py): the row is
        # fine, the configuration is not. The message says what to do and holds no secret.
        logger.warning("%s %s: %s", context["request"].method, context["request"].path, exc)
        exc = ConflictError(str(exc))

    if isinstance(exc, ApplicationError):
        body = problem(
            status_code=exc.status_code,
            error_type=exc.error_type,
            detail=exc.message,
            errors=exc.errors,
            **exc.extra,
        )
        return Response(body, status=exc.status_code)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_body(response.data, response.status_code)
        return response
    data = response.data
    detail = data.get("detail") if isinstance(data, dict) else data
    error_type = next((slug for cls, slug in _TYPE_BY_EXCEPTION if isinstance(exc, cls)), None)
    extra = {}
    wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    if wait is not None:
        extra["retry_after"] = max(1, round(wait))
    response.data = problem(status_code=response.status_code, error_type=error_type, detail=str(detail or ""), **extra)
    return response
