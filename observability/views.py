"""`/metrics`: Prometheus text format.

With `PROMETHEUS_MULTIPROC_DIR` set, the counters and histograms are the sums over every
process that wrote into that directory (gunicorn workers, the django-q2 cluster's workers);
without it, this process's own. The state gauges come from the database at scrape time
(observability/collector.py). `METRICS_TOKEN`, when set, must be sent as a Bearer token.
"""

from __future__ import annotations

import hmac
import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from common.api.exceptions import problem

from . import app_settings
from .collector import DatabaseCollector


class _ProcessRegistry(Collector):
    """This process's default registry, when there is no multiprocess directory."""

    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    # First: a gauge that fails counts in metrics_scrape_errors_total within this scrape.
    registry.register(DatabaseCollector())
    directory = multiprocess_dir()
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ProcessRegistry())
    return registry


def authorized(request: HttpRequest) -> bool:
    token = app_settings.metrics_token()
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not authorized(request):
        response = JsonResponse(
            problem(status_code=401, detail="Send the metrics token: Authorization: Bearer <METRICS_TOKEN>."),
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
