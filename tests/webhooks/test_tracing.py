"""Optional traces (common/tracing.py): with OTEL_ENABLED, a trigger in a request and its
delivery attempts by the engine share one trace; off, OpenTelemetry is not even imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from common import tracing
from tests.common.test_settings import clean_env
from tests.common.test_settings_validation import ROOT
from webhooks import tasks
from webhooks.models import Delivery, Event
from webhooks.services import trigger_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.setup(provider)
    yield exporter
    tracing.teardown()


def test_a_trigger_in_a_request_and_its_delivery_share_one_trace(spans, api_client, webhook, receiver):
    response = api_client.post("/api/events/", {"event": "application.created", "payload": {"id": 1}}, format="json")
    assert response.status_code == 202
    event = Event.objects.get()
    assert event.traceparent and event.traceparent.startswith("00-")

    assert tasks.deliver_due() == 1
    [received] = receiver.wait_for(1)
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.SUCCEEDED

    finished = spans.get_finished_spans()
    [server] = [s for s in finished if s.kind == SpanKind.SERVER]
    [trigger] = [s for s in finished if s.name == "webhooks.trigger_event"]
    [attempt] = [s for s in finished if s.name == "webhooks.deliver"]
    [send] = [s for s in finished if s.kind == SpanKind.CLIENT]
    trace_id = server.context.trace_id
    assert trigger.context.trace_id == attempt.context.trace_id == send.context.trace_id == trace_id
    assert trigger.parent.span_id == server.context.span_id
    assert attempt.parent.span_id == trigger.context.span_id  # a child of the stored traceparent
    assert send.parent.span_id == attempt.context.span_id
    assert event.traceparent.startswith(f"00-{trace_id:032x}-{trigger.context.span_id:016x}-")
    assert attempt.attributes["webhooks.delivery.id"] == str(delivery.pk)
    assert attempt.attributes["webhooks.event.id"] == str(event.id)
    assert attempt.attributes["http.response.status_code"] == 200
    assert trigger.attributes["webhooks.delivery_count"] == 1
    # The receiver sees the same trace in the W3C header.
    assert received.headers["traceparent"].split("-")[1] == f"{trace_id:032x}"


def test_each_retry_joins_the_trace_of_its_event(spans, organization, webhook, receiver):
    from tests.webhooks.helpers import make_due
    from tests.webhooks.receiver import Reply

    receiver.replies = [Reply(status=503)]
    trigger_event(organization=organization, event="application.created", payload={}, idempotency_key="k-1")
    tasks.deliver_due()
    make_due()
    tasks.deliver_due()
    receiver.wait_for(2)
    [trigger] = [s for s in spans.get_finished_spans() if s.name == "webhooks.trigger_event"]
    attempts = [s for s in spans.get_finished_spans() if s.name == "webhooks.deliver"]
    assert [a.attributes["webhooks.attempt"] for a in attempts] == [1, 2]
    assert {a.context.trace_id for a in attempts} == {trigger.context.trace_id}
    assert {a.parent.span_id for a in attempts} == {trigger.context.span_id}
    assert attempts[0].attributes["webhooks.attempt.success"] is False


@pytest.mark.parametrize("idempotency_key", [None, "key-1"])
def test_with_tracing_off_no_traceparent_is_stored_and_no_header_sent(organization, webhook, receiver, idempotency_key):
    assert not tracing.enabled()
    trigger_event(organization=organization, event="application.created", payload={}, idempotency_key=idempotency_key)
    assert Event.objects.get().traceparent is None
    tasks.deliver_due()
    [received] = receiver.wait_for(1)
    assert "traceparent" not in received.headers


PROBE = """
import json, sys, django
django.setup()
from django.conf import settings
from django.test import Client
import webhooks.engine.sending, webhooks.services.events, webhooks.tasks
response = Client().get("/no-such-page/")
print(json.dumps({
    "status": response.status_code,
    "otel_modules": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
    "otel_middleware": [m for m in settings.MIDDLEWARE if "opentelemetry" in m],
}))
"""


def probe(**env: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(DJANGO_SETTINGS_MODULE="config.settings.test", **env),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    report = next(json.loads(line) for line in lines if line.startswith('{"status"'))
    return report, result.stdout


def test_tracing_off_imports_nothing_of_opentelemetry():
    report, _ = probe()
    assert report["status"] == 404
    assert report["otel_modules"] == []
    assert report["otel_middleware"] == []


def test_tracing_on_instruments_django_and_exports_the_request_span():
    report, stdout = probe(OTEL_ENABLED="true", OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="probe-service")
    assert report["status"] == 404
    assert "opentelemetry.instrumentation.django" in report["otel_modules"]
    assert "opentelemetry.instrumentation.requests" in report["otel_modules"]
    assert report["otel_middleware"] == [
        "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
    ]
    # The console exporter writes the request's span at exit (BatchSpanProcessor flush).
    assert '"kind": "SpanKind.SERVER"' in stdout and "probe-service" in stdout


def test_a_bad_traces_exporter_stops_the_start():
    from tests.common.test_settings_validation import manage

    result = manage("check", OTEL_TRACES_EXPORTER="zipkin")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "OTEL_TRACES_EXPORTER='ZIPKIN' is not one of OTLP, CONSOLE, NONE." in lines[0]


def test_the_default_otlp_exporter_is_installed_and_accepted():
    # requirements.txt pins opentelemetry-exporter-otlp-proto-http: the default exporter works.
    from config.settings.base import otlp_exporter_installed
    from tests.common.test_settings_validation import manage

    assert otlp_exporter_installed()
    result = manage("check", OTEL_ENABLED="true")
    assert result.returncode == 0, result.stderr
    assert manage("check", OTEL_ENABLED="true", OTEL_TRACES_EXPORTER="none").returncode == 0
