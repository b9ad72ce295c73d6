"""Optional OpenTelemetry traces (`OTEL_ENABLED`, off by default; README.md "Operating").

When off, nothing here imports OpenTelemetry: the helpers are no-ops. When on (`setup()`,
called by `CommonConfig.ready()`): Django requests and outbound `requests` calls get
spans, and a triggered event and its delivery attempts share one trace: `trigger_span`
gives the W3C `traceparent` stored with the event, and `attempt_span` starts each
attempt's span as its child, whichever process sends it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

TRACER_NAME = "integration-framework"
OTLP_PACKAGE = "opentelemetry-exporter-otlp-proto-http"

_provider: TracerProvider | None = None


def enabled() -> bool:
    return _provider is not None


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
        except ImportError:
            raise ImproperlyConfigured(
                f"OTEL_TRACES_EXPORTER=otlp needs the {OTLP_PACKAGE} package: install it, or set "
                "OTEL_TRACES_EXPORTER=console (or none)."
            ) from None
        return OTLPSpanExporter()  # configured by OTEL_EXPORTER_OTLP_* in the environment
    return None


def _default_provider() -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.OTEL_SERVICE_NAME}))
    exporter = _exporter(settings.OTEL_TRACES_EXPORTER)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def setup(provider: TracerProvider | None = None) -> None:
    """Install the Django and requests instrumentation with `provider` (by default one
    exporting as OTEL_TRACES_EXPORTER says). Idempotent."""
    global _provider
    if _provider is not None:
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    provider = provider or _default_provider()
    if not isinstance(trace.get_tracer_provider(), type(provider)):
        trace.set_tracer_provider(provider)  # once per process; ours are passed explicitly
    DjangoInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    _provider = provider


def teardown() -> None:
    """Remove the instrumentation (tests); spans are no longer made."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    DjangoInstrumentor().uninstrument()
    RequestsInstrumentor().uninstrument()
    _provider.force_flush()
    _provider = None


@contextmanager
def trigger_span(name: str, attributes: Mapping[str, Any]) -> Iterator[tuple[Span | None, str | None]]:
    """A span (child of the current one, e.g. the request's) around triggering an event,
    and its `traceparent` to store with the event; `(None, None)` when tracing is off."""
    if _provider is None:
        yield None, None
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    with _provider.get_tracer(TRACER_NAME).start_as_current_span(name, attributes=dict(attributes)) as span:
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        yield span, carrier.get("traceparent")


@contextmanager
def attempt_span(name: str, traceparent: str | None, attributes: Mapping[str, Any]) -> Iterator[Span | None]:
    """The current span for one delivery attempt, a child of the event's `traceparent`
    (of the current span when the event has none, e.g. a test send during a request);
    None when tracing is off."""
    if _provider is None:
        yield None
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
    tracer = _provider.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(name, context=parent, attributes=dict(attributes)) as span:
        yield span


@contextmanager
def client_span(name: str, scheme: str, host: str, port: int) -> Iterator[Span | None]:
    """The current span of an outbound request made without `requests` (whose instrumentation
    makes its own): a CLIENT span, child of the current one; None when tracing is off."""
    if _provider is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    attributes: dict[str, Any] = {
        "http.request.method": "POST",
        "url.scheme": scheme,
        "server.address": host,
        "server.port": port,
    }
    with _provider.get_tracer(TRACER_NAME).start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def inject(headers: dict[str, str]) -> None:
    """Add the current span's W3C `traceparent` (and `tracestate`) to `headers`."""
    if _provider is None:
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    TraceContextTextMapPropagator().inject(headers)
