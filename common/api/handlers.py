"""Django's error handlers (`handler404`, `handler500`) for paths under /api/.

A request that matches no route (e.g. a malformed id in the path) never reaches DRF, so
Django's default handlers would answer an HTML page. Under /api/ clients get the API's JSON
error body (common/api/exceptions.py `problem`) instead; elsewhere (admin, docs) Django's
own pages are kept. Neither ever shows a traceback.
"""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse
from django.views import defaults

from .exceptions import problem

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse(problem(status_code=HTTPStatus.NOT_FOUND, detail="Not found."), status=HTTPStatus.NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        status = HTTPStatus.INTERNAL_SERVER_ERROR
        return JsonResponse(problem(status_code=status, detail="Internal server error."), status=status)
    return defaults.server_error(request)
