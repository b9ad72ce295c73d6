"""JSON error answers for every path under /api/, whatever DEBUG is.

Some answers never reach DRF's exception handler (common/api/exceptions.py): a path no route
matches, a body over `DATA_UPLOAD_MAX_MEMORY_SIZE`, an exception outside a DRF view, a CSRF
failure, Django's own 400/403/405. Django answers those with HTML pages, and with
`DEBUG=true` (`make run`) with its debug pages: the 404 lists every URL pattern, the 500
shows the traceback and the settings. Under /api/, `common.api.middleware` and the handlers
here answer them in JSON instead; elsewhere (admin, docs) Django's own pages are kept.
Nothing here ever shows a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt

from .exceptions import problem

API_PREFIX = "/api/"

#: the detail of a JSON error that carries no message of its own
_DETAILS = {
    HTTPStatus.NOT_FOUND: "Not found.",
    HTTPStatus.INTERNAL_SERVER_ERROR: "Internal server error.",
}


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(status: int, detail: str | None = None, **extra: Any) -> JsonResponse:
    """The API's error body (common/api/exceptions.py `problem`, plus context keys), for
    answers made outside DRF."""
    if detail is None:
        detail = _DETAILS.get(HTTPStatus(status), f"{HTTPStatus(status).phrase}.")
    return JsonResponse(problem(status_code=status, detail=detail, **extra), status=status)


def browser_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Marks the answers of a view under /api/ that are pages for people (the OAuth start and
    callback pages): their HTML, error pages included, is kept. Answers Django makes around
    such a view (a CSRF failure, a debug page) are still turned into JSON."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.browser_page = True  # type: ignore[attr-defined]
        return response

    return wrapped


def not_found(request, exception=None):
    """`handler404`."""
    if is_api(request):
        return error_response(HTTPStatus.NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """`handler500`."""
    if is_api(request):
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR)
    return defaults.server_error(request)


@csrf_exempt  # it changes nothing: a POST to an unknown path is a 404, not a CSRF 403
def unrouted(request, path: str = ""):
    """The last route under /api/: a path no other route matches is a JSON 404 even with
    DEBUG on, where Django would otherwise answer its debug page listing every URL pattern."""
    return error_response(HTTPStatus.NOT_FOUND)


def csrf_failure(request, reason: str = ""):
    """`CSRF_FAILURE_VIEW`: under /api/ a JSON 403 with Django's reason; elsewhere Django's page."""
    if is_api(request):
        return error_response(HTTPStatus.FORBIDDEN, f"CSRF verification failed: {reason}")
    return csrf.csrf_failure(request, reason=reason)
