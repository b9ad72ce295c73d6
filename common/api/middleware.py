"""`ApiErrorMiddleware`: under /api/, every answer is JSON, whatever DEBUG is.

First in MIDDLEWARE, so it sees every answer. For a path under /api/ it:

1. refuses a body whose declared length is over `DATA_UPLOAD_MAX_MEMORY_SIZE` with a JSON
   413 naming the limit, before anything reads the body (Django would answer an HTML 400
   from whichever code read it first);
2. turns an exception a view raises into its JSON error (404, 403, 400, 413; anything
   else a 500, logged with its traceback and signalled as Django does, so error reporters
   and the test client still see it) before Django's DEBUG pages are built;
3. replaces any other error answer that is not JSON (Django's 400/403/405 pages, the
   DEBUG pages of errors raised outside views) with a JSON one of the same status and
   headers, except the pages views mark as meant for people (`handlers.browser_page`).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.log import log_response

from .handlers import error_response, is_api

logger = logging.getLogger("django.request")

#: headers of an HTML error answer that stay on its JSON replacement
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")


def payload_too_large(limit: int) -> HttpResponse:
    return error_response(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"The request body is larger than the limit of {limit} bytes.",
        max_bytes=limit,
    )


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _is_json(response: HttpResponse) -> bool:
    media_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api(request):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and _declared_length(request) > limit:
            return payload_too_large(limit)
        response = self.get_response(request)
        if response.status_code < HTTPStatus.BAD_REQUEST or _is_json(response):
            return response
        if getattr(response, "browser_page", False):
            return response
        replacement = error_response(response.status_code, self._detail(request, response))
        for header in _KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return payload_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        if isinstance(exception, Http404):
            return error_response(HTTPStatus.NOT_FOUND)
        if isinstance(exception, PermissionDenied):
            return error_response(HTTPStatus.FORBIDDEN, "You do not have permission to perform this action.")
        if isinstance(exception, SuspiciousOperation):
            return error_response(HTTPStatus.BAD_REQUEST)
        # What Django does with an uncaught exception, minus the DEBUG page.
        signals.got_request_exception.send(sender=None, request=request)
        response = error_response(HTTPStatus.INTERNAL_SERVER_ERROR)
        log_response(
            "%s: %s",
            response.reason_phrase,
            request.path,
            response=response,
            request=request,
            logger=logger,
            exception=exception,
        )
        return response

    @staticmethod
    def _detail(request: HttpRequest, response: HttpResponse) -> str | None:
        if response.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            return f'Method "{request.method}" not allowed.'
        return None
