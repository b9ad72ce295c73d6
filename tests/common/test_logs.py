"""Structured logs (common/logs.py): LOG_FORMAT=json lines carry request_id, organization,
event_id and delivery_id after a real request and a real delivery, and no secrets."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import uuid

import pytest

from common.logs import ContextFilter, JsonFormatter, TextFormatter, log_secrets
from tests.common.test_settings_validation import manage
from webhooks import tasks
from webhooks.models import Delivery
from webhooks.services import trigger_event, webhook_create

SECRET = "sk_live_9f8e7d6c5b4a"


class Capture:
    """A handler on the root logger like the settings' console handler, into a buffer."""

    def __init__(self, formatter: logging.Formatter):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(ContextFilter())
        self.handler.setFormatter(formatter)

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def capture():
    made: list[Capture] = []
    levels = {name: logging.getLogger(name).level for name in ("", "webhooks")}

    def start(formatter: logging.Formatter | None = None) -> Capture:
        cap = Capture(formatter or JsonFormatter())
        logging.getLogger().addHandler(cap.handler)
        made.append(cap)
        return cap

    logging.getLogger("webhooks").setLevel(logging.DEBUG)
    yield start
    for cap in made:
        logging.getLogger().removeHandler(cap.handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.django_db
def test_a_real_request_logs_its_request_id_and_organization(capture, api_client, anon_client, organization):
    cap = capture()
    response = api_client.get(f"/api/integrations/webhooks/{uuid.uuid4()}/")
    assert response.status_code == 404
    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    [line] = [line for line in cap.lines() if line["logger"] == "django.request"]
    assert line["level"] == "WARNING" and line["message"].startswith("Not Found: /api/integrations/webhooks/")
    assert line["request_id"] == request_id
    assert line["organization"] == organization.slug
    assert line["event_id"] is None and line["delivery_id"] is None
    assert line["timestamp"]
    # The next request gets its own id, and nothing of the first one stays bound.
    second = anon_client.get("/api/integrations/webhooks/", HTTP_X_REQUEST_ID="second-request")
    assert second.status_code == 401 and second["X-Request-ID"] == "second-request"
    [line] = [line for line in cap.lines() if line["logger"] == "django.request" and line["request_id"] != request_id]
    assert line["request_id"] == "second-request" and line["organization"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("req-42_a.b", True),
        ("A" * 64, True),
        ("A" * 65, False),
        ("two words", False),
        ('x"><script>', False),
        ("line\nbreak", False),
    ],
)
def test_an_incoming_request_id_is_kept_only_when_sane(api_client, incoming, kept):
    response = api_client.get("/api/organization/", HTTP_X_REQUEST_ID=incoming)
    assert response.status_code == 200
    if kept:
        assert response["X-Request-ID"] == incoming
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.django_db
def test_a_real_delivery_logs_its_event_and_delivery_ids(capture, organization, receiver):
    webhook_create(organization=organization, name="Receiver", url=receiver.url, events=["application.created"])
    cap = capture()
    event = trigger_event(organization=organization, event="application.created", payload={"id": 7})
    assert tasks.deliver_due() == 1
    receiver.wait_for(1)
    delivery = Delivery.objects.get()
    [triggered] = [line for line in cap.lines() if line["message"].startswith(f"Event {event.id}")]
    assert triggered["event_id"] == str(event.id)
    assert triggered["organization"] == organization.slug
    assert triggered["delivery_id"] is None
    [attempt] = [line for line in cap.lines() if line["message"].startswith("Attempt 1 of delivery")]
    assert attempt["logger"] == "webhooks.engine.sending"
    assert attempt["message"].endswith("HTTP 200 in " + attempt["message"].rsplit(" in ", 1)[1])
    assert attempt["event_id"] == str(event.id)
    assert attempt["delivery_id"] == str(delivery.pk)
    # Bound only around the delivery: a line after it carries neither.
    logging.getLogger("webhooks").warning("after the batch")
    assert cap.lines()[-1]["event_id"] is None and cap.lines()[-1]["delivery_id"] is None


@pytest.mark.parametrize("formatter", [JsonFormatter, TextFormatter])
def test_a_logged_exception_bearing_secrets_does_not_show_them(capture, formatter):
    cap = capture(formatter())
    logger = logging.getLogger("integrations.test")
    try:
        raise RuntimeError(f"token endpoint said no: client_secret={SECRET}&grant_type=refresh_token")
    except RuntimeError:
        logger.exception("Refresh failed with Authorization: Bearer %s", SECRET + "-other")
    logger.warning("call failed", extra={"api_key": SECRET, "attempt": 2})
    output = cap.text()
    assert "RuntimeError: token endpoint said no" in output  # the traceback is there, redacted
    assert "grant_type=refresh_token" in output
    assert SECRET not in output
    assert "[redacted]" in output
    if formatter is JsonFormatter:
        first, second = cap.lines()
        assert first["exc_info"].startswith("Traceback")
        assert second["api_key"] == "[redacted]" and second["attempt"] == 2


def test_bound_secret_values_are_redacted_whatever_their_name(capture):
    cap = capture()
    with log_secrets(["hunter2-header-value"]):
        logging.getLogger("x").warning("receiver echoed %s", "hunter2-header-value")
    logging.getLogger("x").warning("receiver echoed %s", "hunter2-header-value")
    first, second = cap.lines()
    assert first["message"] == "receiver echoed [redacted]"
    assert second["message"] == "receiver echoed hunter2-header-value"  # unbound: not a secret any more


@pytest.mark.django_db
def test_an_unexpected_delivery_error_does_not_log_the_webhook_header_secret(capture, organization, monkeypatch):
    # The system's resolver (third party, faked) raises with the custom header in its message.
    url = "https://receiver.example.com/hook"
    webhook_create(organization=organization, name="Echo", url=url, events=["*"], headers={"X-Receiver-Token": SECRET})
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "receiver.example.com":
            raise ValueError(f"bad header value {SECRET!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    cap = capture()
    event = trigger_event(organization=organization, event="application.created", payload={})
    assert tasks.deliver_due() == 1
    delivery = Delivery.objects.get()
    [line] = [line for line in cap.lines() if line["message"].startswith("Unexpected error delivering")]
    assert line["delivery_id"] == str(delivery.pk) and line["event_id"] == str(event.id)
    assert "ValueError: bad header value" in line["exc_info"]
    assert SECRET not in cap.text()
    assert Delivery.objects.get().last_error == "Unexpected error (ValueError)."


def test_log_format_json_writes_json_lines_and_a_bad_value_stops_the_start():
    result = manage(
        "shell", "-c", "import logging; logging.getLogger('probe').warning('hello %s', 'json')", LOG_FORMAT="json"
    )
    assert result.returncode == 0, result.stderr
    [line] = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert line["message"] == "hello json" and line["logger"] == "probe" and line["level"] == "WARNING"
    assert set(line) >= {"timestamp", "request_id", "organization", "event_id", "delivery_id"}

    text = manage("shell", "-c", "import logging; logging.getLogger('probe').warning('hello text')")
    assert text.returncode == 0 and "WARNING probe hello text" in text.stderr

    bad = manage("check", LOG_FORMAT="xml")
    assert bad.returncode != 0
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1, bad.stderr
    assert "LOG_FORMAT='XML' is not one of TEXT, JSON." in lines[0]
