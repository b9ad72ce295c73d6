"""`http_requests_total` and `http_request_duration_seconds` for every request.

The route label is the resolved URL pattern with its parameters as `{name}` (e.g.
`api/integrations/webhooks/{pk}/logs/`), never the raw path, so its values are bounded by
the URL configuration; a path that resolves to nothing is `unmatched`. Methods outside the
standard set are `other`.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from common.app_settings import metrics_enabled
from common.metrics import record_http_request

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")


@functools.lru_cache(maxsize=2048)
def route_label(route: str) -> str:
    """`api/integrations/webhooks/(?P<pk>[^/.]+)/logs/?$` -> `api/integrations/webhooks/{pk}/logs/`."""
    label = _CONVERTER.sub(r"{\1}", _GROUP.sub(r"{\1}", route))
    label = label.replace("^", "").replace("$", "").replace("\\", "")
    label = label.replace("/?", "/")
    return re.sub(r"/{2,}", "/", label) or "/"


class HttpMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not metrics_enabled():
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = route_label(match.route) if match is not None and match.route else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        record_http_request(
            route=route, method=method or "other", status=response.status_code, seconds=time.perf_counter() - started
        )
        return response
