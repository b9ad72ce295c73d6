"""The connection issue rules (integrations/issues.py): opening, resolving, no flapping, events."""

from __future__ import annotations

import pytest

from integrations.issues import (
    EVENT_OPENED,
    EVENT_REAUTHORIZATION_REQUIRED,
    EVENT_RESOLVED,
    Observation,
    Seen,
    issue_cleared,
    issue_detected,
    issues_observe,
)
from integrations.models import ConnectionIssue, Integration
from tests.integrations.conftest import SENTINEL
from tests.integrations.factories import IntegrationFactory
from webhooks.models import Delivery, Event
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

Kind = ConnectionIssue.Kind
LASTING = [Kind.REAUTHORIZATION_REQUIRED, Kind.MISSING_SCOPES, Kind.CREDENTIALS_REJECTED, Kind.CONFIG_INVALID]
LASTING += [Kind.CERTIFICATE_EXPIRING]
TRANSIENT = [Kind.PROVIDER_UNAVAILABLE, Kind.RATE_LIMITED]


@pytest.fixture
def integration(organization):
    return IntegrationFactory(organization=organization, credentials={"api_key": SENTINEL})


def detect(integration, kind, message="it broke"):
    return issue_detected(integration=integration, kind=kind, message=message, details={"why": "test"})


def active(integration, kind) -> ConnectionIssue | None:
    return ConnectionIssue.objects.filter(integration=integration, kind=kind, status__in=["pending", "open"]).first()


def events(kind=None):
    found = Event.objects.order_by("created_at")
    return [e for e in found if kind is None or e.payload.get("issue", {}).get("kind") == kind]


def test_every_kind_is_covered_by_these_tests():
    assert set(LASTING) | set(TRANSIENT) == set(Kind.values)


@pytest.mark.parametrize("kind", LASTING)
def test_a_lasting_kind_opens_at_once_and_resolves_after_a_sustained_recovery(integration, kind):
    issue = detect(integration, kind)
    assert issue.status == "open" and issue.opened_at is not None and issue.count == 1
    assert [e.type for e in events()][:1] == [EVENT_OPENED]
    assert issue_cleared(integration=integration, kind=kind) is None
    assert issue_cleared(integration=integration, kind=kind) is None
    assert active(integration, kind).status == "open"  # two good observations are not enough
    resolved = issue_cleared(integration=integration, kind=kind)
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert active(integration, kind) is None
    assert events()[-1].type == EVENT_RESOLVED
    assert events()[-1].payload["issue"]["status"] == "resolved"


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_transient_kind_opens_only_after_three_detections_in_a_row(integration, kind):
    first = detect(integration, kind)
    second = detect(integration, kind)
    assert first.status == second.status == "pending"
    assert not Event.objects.exists()  # pending: silent
    third = detect(integration, kind)
    assert third.pk == first.pk and third.status == "open" and third.count == 3
    assert [e.type for e in events()] == [EVENT_OPENED]
    for _ in range(3):
        issue_cleared(integration=integration, kind=kind)
    assert ConnectionIssue.objects.get(pk=first.pk).status == "resolved"
    assert [e.type for e in events()] == [EVENT_OPENED, EVENT_RESOLVED]


@pytest.mark.parametrize("kind", TRANSIENT)
def test_alternating_results_never_open_a_transient_issue(integration, kind):
    for _ in range(10):
        detect(integration, kind)
        issue_cleared(integration=integration, kind=kind)
    detect(integration, kind)
    detect(integration, kind)
    assert active(integration, kind).status == "pending"
    assert not ConnectionIssue.objects.filter(status="open").exists()
    assert not Event.objects.exists()


@pytest.mark.parametrize("kind", [*LASTING, *TRANSIENT])
def test_alternating_results_never_resolve_an_open_issue(integration, kind):
    for _ in range(3):
        detect(integration, kind)
    for _ in range(10):
        issue_cleared(integration=integration, kind=kind)
        issue_cleared(integration=integration, kind=kind)
        detect(integration, kind)  # one bad observation resets the recovery
    issue = active(integration, kind)
    assert issue.status == "open" and issue.clear_streak == 0
    assert ConnectionIssue.objects.filter(integration=integration, kind=kind).count() == 1
    assert [e.type for e in events() if e.type != EVENT_REAUTHORIZATION_REQUIRED] == [EVENT_OPENED]


def test_detections_keep_first_seen_and_move_last_seen_and_count(integration):
    first = detect(integration, Kind.CREDENTIALS_REJECTED, "first")
    again = detect(integration, Kind.CREDENTIALS_REJECTED, "second")
    assert again.pk == first.pk
    assert again.first_seen_at == first.first_seen_at and again.last_seen_at >= first.last_seen_at
    assert (again.count, again.message) == (2, "second")
    assert len(events()) == 1  # opened once


def test_immediately_resolves_at_once(integration):
    detect(integration, Kind.REAUTHORIZATION_REQUIRED)
    resolved = issue_cleared(integration=integration, kind=Kind.REAUTHORIZATION_REQUIRED, immediately=True)
    assert resolved.status == "resolved"


def test_a_resolved_issue_stays_as_history_and_a_new_detection_opens_a_new_row(integration):
    detect(integration, Kind.CONFIG_INVALID)
    issue_cleared(integration=integration, kind=Kind.CONFIG_INVALID, immediately=True)
    again = detect(integration, Kind.CONFIG_INVALID)
    assert again.status == "open"
    assert list(ConnectionIssue.objects.filter(kind="config_invalid").values_list("status", flat=True).order_by()) in (
        ["resolved", "open"],
        ["open", "resolved"],
    )


def test_the_thresholds_are_settings(integration, settings):
    settings.INTEGRATION_ISSUE_OPEN_AFTER = 1
    settings.INTEGRATION_ISSUE_RESOLVE_AFTER = 1
    assert detect(integration, Kind.RATE_LIMITED).status == "open"
    assert issue_cleared(integration=integration, kind=Kind.RATE_LIMITED).status == "resolved"


def test_opening_an_issue_makes_a_healthy_integration_degraded(integration):
    Integration.objects.filter(pk=integration.pk).update(health_status="healthy")
    integration.refresh_from_db()
    detect(integration, Kind.CREDENTIALS_REJECTED)
    integration.refresh_from_db()
    assert integration.health_status == "degraded"


def test_turning_healthy_into_degraded_moves_updated_at(integration):
    from datetime import timedelta

    from django.utils import timezone

    before = timezone.now() - timedelta(hours=1)
    Integration.objects.filter(pk=integration.pk).update(health_status="healthy", updated_at=before)
    integration.refresh_from_db()
    detect(integration, Kind.CREDENTIALS_REJECTED)
    integration.refresh_from_db()
    assert integration.health_status == "degraded" and integration.updated_at > before


def test_events_carry_the_issue_and_no_secret(integration, organization):
    hook = webhook_create(
        organization=organization,
        name="ops",
        url="https://hooks.example.com/ops",
        events=[EVENT_OPENED, EVENT_RESOLVED, EVENT_REAUTHORIZATION_REQUIRED],
    )
    issue = issue_detected(
        integration=integration,
        kind=Kind.REAUTHORIZATION_REQUIRED,
        message="Reconnect it",
        details={"reconnect_url": "https://app.example.com/admin/x/reconnect/"},
    )
    opened = Event.objects.get(type=EVENT_OPENED)
    assert opened.payload == {
        "integration": {"id": str(integration.pk), "name": integration.name, "provider": "rippling"},
        "issue": {
            "id": str(issue.pk),
            "kind": "reauthorization_required",
            "status": "open",
            "message": "Reconnect it",
            "details": {"reconnect_url": "https://app.example.com/admin/x/reconnect/"},
            "count": 1,
            "first_seen_at": issue.first_seen_at.isoformat(),
            "last_seen_at": issue.last_seen_at.isoformat(),
            "opened_at": issue.opened_at.isoformat(),
            "resolved_at": None,
        },
    }
    reauthorization = Event.objects.get(type=EVENT_REAUTHORIZATION_REQUIRED)
    assert reauthorization.payload == {
        "integration": {"id": str(integration.pk), "name": integration.name, "provider": "rippling"},
        "issue_id": str(issue.pk),
        "message": "Reconnect it",
        "reconnect_url": "https://app.example.com/admin/x/reconnect/",
        "consent_url": None,
    }
    detect(integration, Kind.REAUTHORIZATION_REQUIRED)  # still open: no second announcement
    assert Event.objects.filter(type=EVENT_REAUTHORIZATION_REQUIRED).count() == 1
    issue_cleared(integration=integration, kind=Kind.REAUTHORIZATION_REQUIRED, immediately=True)
    assert Event.objects.filter(type=EVENT_RESOLVED).count() == 1
    assert Delivery.objects.filter(webhook=hook).count() == 3
    assert SENTINEL not in str(list(Event.objects.values_list("payload", flat=True)))


def test_a_batch_observation_writes_only_what_changes(organization, django_assert_num_queries):
    integrations = [IntegrationFactory(organization=organization, name=f"b{n}") for n in range(5)]
    with django_assert_num_queries(0):
        assert issues_observe(observations=[]) == {}
    failing = [Observation(i, detected={Kind.PROVIDER_UNAVAILABLE: Seen("503")}) for i in integrations]
    with django_assert_num_queries(4):  # load the active issues, insert the new ones (in a savepoint)
        result = issues_observe(observations=failing)
    assert result == {i.pk: [] for i in integrations}  # pending: not open yet
    assert ConnectionIssue.objects.filter(status="pending", count=1).count() == 5
    with django_assert_num_queries(2):  # load, one bulk update
        issues_observe(observations=failing)
    assert ConnectionIssue.objects.filter(status="pending", count=2).count() == 5
    cleared = [Observation(i, looked_for=frozenset({Kind.PROVIDER_UNAVAILABLE})) for i in integrations]
    with django_assert_num_queries(2):  # load, delete the pending rows
        issues_observe(observations=cleared)
    assert not ConnectionIssue.objects.exists()
    with django_assert_num_queries(1):  # nothing active: the load only, no write
        issues_observe(observations=cleared)


def test_a_batch_observation_opens_and_resolves_with_events(organization):
    integration = IntegrationFactory(organization=organization)
    seen = Observation(integration, detected={Kind.CREDENTIALS_REJECTED: Seen("HTTP 401", {"http_status": 401})})
    result = issues_observe(observations=[seen])
    (issue,) = result[integration.pk]
    assert (issue.kind, issue.status, issue.details) == ("credentials_rejected", "open", {"http_status": 401})
    assert [e.type for e in events()] == [EVENT_OPENED]
    looked = Observation(integration, looked_for=frozenset({Kind.CREDENTIALS_REJECTED, Kind.RATE_LIMITED}))
    for _ in range(2):
        assert issues_observe(observations=[looked])[integration.pk] == [issue]
    assert issues_observe(observations=[looked])[integration.pk] == []
    assert ConnectionIssue.objects.get(pk=issue.pk).status == "resolved"
    assert [e.type for e in events()] == [EVENT_OPENED, EVENT_RESOLVED]
