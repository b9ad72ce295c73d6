"""Schemathesis fuzzing of every operation in /api/schema/, in-process against the WSGI app.

Each operation gets a fixed number of derandomized examples (the same cases on every run),
sent with a valid API key. The checks: no 5xx, every status code, content type and body
documented in the schema, authentication not ignored (the request without the key must
fail). (`negative_data_rejection` is not used: DRF deliberately coerces `0` to `"0"` and
`1` to `true`, which that check counts as accepting schema-violating input.)

Path ids are mostly replaced by real objects of the key's organization (several kinds: an
OAuth integration and an API-key one, an active and a disabled webhook), so the fuzzer
reaches past the 404. Every example runs in a savepoint that is rolled back, so one
example's DELETE does not starve the next. Outbound HTTP (webhook test/replay, OAuth token
requests) goes to `responses`, never to the network, and answers in turn success, a
refusal, a server error and a connection failure.

Schemathesis does not generate bodies nested deeper than API_MAX_JSON_DEPTH or larger than
DATA_UPLOAD_MAX_MEMORY_SIZE, so `test_api_refuses_deep_and_oversized_bodies` sends those to
every operation with a body and validates the answers with the same checks.

Nothing is written to the work tree: schemathesis's cache is off and pointed at a temporary
directory (`.schemathesis/` is in .gitignore as well).
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import responses
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from integrations.models import Integration
from integrations.services import integration_create
from organizations.services import api_key_create
from tests.factories import OrganizationFactory
from webhooks.engine.loop import process
from webhooks.engine.store import claim_due
from webhooks.models import Delivery, Event, WebhookLog
from webhooks.services import event_type_create, webhook_create, webhook_disable

pytestmark = pytest.mark.django_db

#: examples per operation: bounded and derandomized so the run is short and repeatable
MAX_EXAMPLES = 100
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"deterministic": True},
        # 502 is the documented answer when a third party fails (OAuth token endpoint);
        # status_code_conformance still fails it on any operation that does not document it.
        "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "502"]}},
        # No `.schemathesis/` in the work tree (`make test` left one untracked).
        "cache": {"enabled": False, "directory": str(Path(tempfile.gettempdir()) / "schemathesis-cache")},
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG)


class World:
    """Real objects of one organization for the fuzzer's path ids."""

    def __init__(self):
        self.organization = OrganizationFactory(slug="fuzz")
        self.api_key, self.raw_key = api_key_create(organization=self.organization, name="fuzzer")
        self.target_key, _ = api_key_create(organization=self.organization, name="target")
        oauth = integration_create(
            organization=self.organization,
            name="fuzz idp",
            provider="custom",
            auth_type="oauth2",
            config={
                "authorization_url": "https://idp.fuzz.test/authorize",
                "token_url": "https://idp.fuzz.test/token",
                "client_id": "fuzz-client",
            },
            credentials={"client_secret": "fuzz-client-secret"},
        )
        oauth.credentials = {**oauth.credentials, "access_token": "fuzz-access", "refresh_token": "fuzz-refresh"}
        oauth.status = Integration.Status.ACTIVE
        oauth.token_expires_at = timezone.now() + timedelta(hours=1)
        oauth.save()
        api_key_integration = integration_create(
            organization=self.organization,
            name="fuzz hr",
            provider="bamboohr",
            auth_type="api_key",
            config={"company_domain": "fuzz"},
            credentials={"api_key": "fuzz-api-key"},
        )
        self.integrations = [oauth, api_key_integration]
        active = webhook_create(
            organization=self.organization, name="fuzz hook", url="https://hooks.fuzz.test/in", events=["*"]
        )
        disabled = webhook_create(
            organization=self.organization, name="fuzz off", url="https://hooks.fuzz.test/off", events=["*"]
        )
        self.webhooks = [active, disabled]
        self.logs = {webhook.pk: self._log_for(webhook) for webhook in self.webhooks}
        webhook_disable(webhook=disabled, reason="fuzz")
        self.event_type = event_type_create(
            organization=self.organization, name="custom.fuzz", schema={"type": "object"}
        )

    def _log_for(self, webhook) -> WebhookLog:
        event = Event.objects.create(organization=self.organization, type="job.created", payload={"a": 1})
        delivery = Delivery.objects.create(
            organization=self.organization, event=event, webhook=webhook, next_attempt_at=timezone.now()
        )
        process(claim_due(limit=1, delivery_ids=[delivery.pk]))
        return WebhookLog.objects.get(delivery=delivery)

    def ids_for(self, path: str, pick: int) -> dict[str, str]:
        if path.startswith("/api/api-keys/"):
            return {"id": str(self.target_key.pk)}
        if path.startswith("/api/integrations/webhooks/event-types/"):
            return {"name": self.event_type.name}
        if path.startswith("/api/integrations/webhooks/"):
            webhook = self.webhooks[pick % len(self.webhooks)]
            return {"id": str(webhook.pk), "log_id": str(self.logs[webhook.pk].pk)}
        return {"id": str(self.integrations[pick % len(self.integrations)].pk), "interview_id": "int-fuzz"}


def _third_party_answers():
    """Token endpoints and webhook receivers answer, in turn: success, refusal, 5xx, no connection."""
    tokens = json.dumps({"access_token": "fuzz-access-2", "refresh_token": "fuzz-refresh-2", "expires_in": 3600})
    refusal = json.dumps({"error": "invalid_grant", "error_description": "The grant is dead."})
    outcomes = itertools.cycle(
        [
            (200, tokens),
            (400, refusal),
            (503, "unavailable"),
            requests.ConnectionError("connection refused"),
        ]
    )

    def answer(request):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        status, body = outcome
        return status, {"Content-Type": "application/json"}, body

    return answer


@pytest.fixture
def no_connection_recycling():
    """The WSGI handler fires request_started/finished, whose close_old_connections would
    close the test's connection mid-transaction (Django's test client disconnects it too)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(no_connection_recycling):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        answer = _third_party_answers()
        for method in (responses.GET, responses.POST):
            mocked.add_callback(method, re.compile(r"https?://.*"), callback=answer)
        yield World()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_fuzz(case, world):
    parameters = case.path_parameters or {}
    generated = str(parameters.get("id", ""))
    # Mostly real objects; one case in four keeps the generated ids (the 404 path).
    pick = zlib.crc32(generated.encode())
    if parameters and pick % 4:
        for name, value in world.ids_for(case.path, pick // 4).items():
            if name in parameters:
                parameters[name] = value
    with transaction.atomic():
        try:
            case.call_and_validate(headers={"Authorization": f"Bearer {world.raw_key}"}, checks=CHECKS)
        finally:
            transaction.set_rollback(True)


# --- what schemathesis does not generate: deep and oversized bodies -----------------------------

# The proxy forwards its body to the provider as bytes, unparsed (tests/security/test_proxy.py
# covers its size limit): the depth limit is for bodies this API reads.
BODY_OPERATIONS = [
    result.ok()
    for result in schema.get_all_operations()
    if result.ok().body and result.ok().path != "/api/integrations/{id}/proxy/{path}"
]


def nested_json(depth: int) -> bytes:
    """`depth` levels of objects and arrays, built as text (no recursion)."""
    opening = "".join('{"a":' if level % 2 == 0 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return (opening + "1" + closing).encode()


def oversized_json() -> bytes:
    return b'{"name": "' + b"x" * django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'"}'


#: body kind -> (body, expected status)
HOSTILE_BODIES = {
    "one level too deep": (lambda: nested_json(django_settings.API_MAX_JSON_DEPTH + 1), 400),
    "50,000 levels deep": (lambda: nested_json(50_000), 400),
    "over the upload limit": (oversized_json, 413),
}


def test_every_operation_with_a_body_is_covered():
    assert len(BODY_OPERATIONS) >= 10
    assert {"/api/events/", "/api/integrations/"} <= {operation.path for operation in BODY_OPERATIONS}


@pytest.mark.parametrize("kind", list(HOSTILE_BODIES))
@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_api_refuses_deep_and_oversized_bodies(operation, kind, world):
    make_body, status = HOSTILE_BODIES[kind]
    names = re.findall(r"\{(\w+)\}", operation.path)
    ids = world.ids_for(operation.path, 0)
    case = operation.Case(
        path_parameters={name: ids[name] for name in names},
        body=make_body(),
        media_type="application/json",
    )
    with transaction.atomic():
        try:
            response = case.call_and_validate(headers={"Authorization": f"Bearer {world.raw_key}"}, checks=CHECKS)
        finally:
            transaction.set_rollback(True)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == ["application/json"]
    detail = response.json()["detail"]
    assert ("levels deep" in detail) if status == 400 else (str(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in detail)


def test_schemathesis_writes_nothing_into_the_work_tree():
    root = Path(__file__).resolve().parents[2]
    assert CONFIG.cache.enabled is False
    assert root not in CONFIG.cache.directory.resolve().parents
    assert "/.schemathesis/" in (root / ".gitignore").read_text().splitlines()
