"""The Prometheus counters and histograms every app records into, and how to record them.

Names and labels (docs/METRICS.md has the table, the DB gauges and the multiprocess setup):

- ``webhook_deliveries_total{outcome, status_class}``: every recorded delivery attempt, by
  what it led to (``succeeded``, ``retrying``, ``failed``) and the receiver's status class
  (``2xx`` ... ``5xx``; ``none``: no HTTP status: timeout, refused, not sent).
- ``webhook_attempt_duration_seconds{status_class}``: one HTTP attempt's duration.
- ``webhook_end_to_end_latency_seconds``: the event's commit (``Event.created_at``) to its 2xx.
- ``health_checks_total{provider, result}``, ``health_check_duration_seconds{provider}``,
  ``health_status_changes_total{provider}``.
- ``integration_token_refreshes_total{grant, outcome}`` (grant: ``refresh``, ``jwt``, ``saml``;
  outcome: ``success``, ``failure``), ``integration_provider_calls_total{provider, status_class}``,
  ``integration_rate_limit_wait_seconds{provider}``, ``integration_rate_limited_total{provider}``.
- ``http_requests_total{route, method, status}``, ``http_request_duration_seconds{route, method}``.
- ``metrics_scrape_errors_total{collector}``: a database gauge that failed to read.

Recording is in-process and cheap (no database, bounded labels). With
``PROMETHEUS_MULTIPROC_DIR`` set *before this module is first imported*, prometheus-client
writes each process's values to files there, and ``/metrics`` sums them over every gunicorn
worker and django-q2 cluster process of the machine. ``METRICS_ENABLED=false`` makes every
``record_*``/``observe_*`` call here a no-op. This module imports no app.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram

from .app_settings import metrics_enabled

#: a delivery attempt, a health check or a provider call: from a few ms to a timeout
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: trigger to 2xx: milliseconds when all is well, hours when the receiver was down
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
#: waits for a rate-limit bucket
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Recorded delivery attempts, by what they led to and the receiver's HTTP status class (none: no status).",
    ["outcome", "status_class"],
)
WEBHOOK_ATTEMPT_DURATION = Histogram(
    "webhook_attempt_duration_seconds",
    "Duration of one HTTP delivery attempt.",
    ["status_class"],
    buckets=DURATION_BUCKETS,
)
WEBHOOK_END_TO_END_LATENCY = Histogram(
    "webhook_end_to_end_latency_seconds",
    "From the event's commit (Event.created_at) to its 2xx, per succeeded delivery.",
    buckets=LATENCY_BUCKETS,
)
HEALTH_CHECKS = Counter(
    "health_checks_total", "Health checks recorded, by provider and result.", ["provider", "result"]
)
HEALTH_CHECK_DURATION = Histogram(
    "health_check_duration_seconds", "Duration of one health check.", ["provider"], buckets=DURATION_BUCKETS
)
HEALTH_STATUS_CHANGES = Counter(
    "health_status_changes_total", "An integration's health_status changed (flapping signal).", ["provider"]
)
TOKEN_REFRESHES = Counter(
    "integration_token_refreshes_total",
    "OAuth 2.0 token refreshes and JWT/SAML token mints, by outcome.",
    ["grant", "outcome"],
)
PROVIDER_CALLS = Counter(
    "integration_provider_calls_total",
    "HTTP requests sent through integrations.client, by provider and status class (none: no answer).",
    ["provider", "status_class"],
)
RATE_LIMIT_WAIT = Histogram(
    "integration_rate_limit_wait_seconds",
    "Time a client call waited for its rate-limit bucket (calls that did not wait are not observed).",
    ["provider"],
    buckets=WAIT_BUCKETS,
)
RATE_LIMITED = Counter(
    "integration_rate_limited_total",
    "Client calls refused with RateLimited (our shared limit, or the provider's 429).",
    ["provider"],
)
HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests served, by URL pattern, method and status.", ["route", "method", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds", "HTTP request latency.", ["route", "method"], buckets=DURATION_BUCKETS
)
SCRAPE_ERRORS = Counter(
    "metrics_scrape_errors_total", "A database gauge that failed to read during a scrape.", ["collector"]
)

_STATUS_CLASSES = {1: "none", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def status_class(status: int | None) -> str:
    """`2xx` ... `5xx`; `none` for no status (or one outside 200-599)."""
    if status is None:
        return "none"
    return _STATUS_CLASSES.get(status // 100, "none")


# --- webhooks -------------------------------------------------------------------------------


#: (outcome, status, attempt seconds or None when no request was sent, latency seconds or None)
Attempt = tuple[str, int | None, float | None, float | None]
_delivery_children: dict[tuple[str, str], Any] = {}
_duration_children: dict[str, Any] = {}


def record_deliveries(attempts: Iterable[Attempt]) -> None:
    """A batch's recorded attempts (the engine calls this once per batch). The labelled
    children are cached: a batch costs a few mmap writes per attempt and no lookups."""
    if not metrics_enabled():
        return
    for outcome, status, duration, latency in attempts:
        klass = status_class(status)
        counter = _delivery_children.get((outcome, klass))
        if counter is None:
            counter = _delivery_children[(outcome, klass)] = WEBHOOK_DELIVERIES.labels(outcome, klass)
        counter.inc()
        if duration is not None:
            histogram = _duration_children.get(klass)
            if histogram is None:
                histogram = _duration_children[klass] = WEBHOOK_ATTEMPT_DURATION.labels(klass)
            histogram.observe(duration)
        if latency is not None:
            WEBHOOK_END_TO_END_LATENCY.observe(max(latency, 0.0))


# --- health -----------------------------------------------------------------------------------


def record_health_check(*, provider: str, result: str, status_changed: bool) -> None:
    if not metrics_enabled():
        return
    HEALTH_CHECKS.labels(provider, result).inc()
    if status_changed:
        HEALTH_STATUS_CHANGES.labels(provider).inc()


def observe_health_check_duration(*, provider: str, seconds: float) -> None:
    if metrics_enabled():
        HEALTH_CHECK_DURATION.labels(provider).observe(seconds)


# --- integrations ---------------------------------------------------------------------------


def record_token_refresh(*, grant: str, success: bool) -> None:
    if metrics_enabled():
        TOKEN_REFRESHES.labels(grant, "success" if success else "failure").inc()


def record_provider_call(*, provider: str, status: int | None, waited_seconds: float) -> None:
    if not metrics_enabled():
        return
    PROVIDER_CALLS.labels(provider, status_class(status)).inc()
    if waited_seconds > 0:
        RATE_LIMIT_WAIT.labels(provider).observe(waited_seconds)


def record_rate_limited(*, provider: str, waited_seconds: float = 0.0) -> None:
    if not metrics_enabled():
        return
    RATE_LIMITED.labels(provider).inc()
    if waited_seconds > 0:
        RATE_LIMIT_WAIT.labels(provider).observe(waited_seconds)


# --- HTTP -----------------------------------------------------------------------------------


def record_http_request(*, route: str, method: str, status: int, seconds: float) -> None:
    if not metrics_enabled():
        return
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(route, method).observe(seconds)


def record_scrape_error(*, collector: str) -> None:
    SCRAPE_ERRORS.labels(collector).inc()
