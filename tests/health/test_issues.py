"""Health checks as a detector: each result's issue is recorded with the batch, and health
status and open issues never contradict each other (health/services.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from health.checks import DEGRADED, HEALTHY, UNHEALTHY, CheckResult, check_integration
from health.models import HealthCheck
from health.services import IntegrationNotConnected, health_check_now, health_record_results, health_run
from integrations.issues import issue_detected
from integrations.models import ConnectionIssue, Integration
from integrations.services import integration_create
from tests.integrations.factories import IntegrationFactory
from tests.integrations.saml_helpers import IDP_ENTITY_ID, key_pair, metadata_xml
from tests.webhooks.receiver import Receiver, Reply
from webhooks.models import Event

from .conftest import CUSTOM_URL, GOOGLE_URL, SECRET, SLACK_URL, custom, oauth

pytestmark = pytest.mark.django_db

Kind = ConnectionIssue.Kind


def check(mock, integration, status=200, **kwargs) -> HealthCheck:
    if mock.registered():
        mock.replace(responses.GET, CUSTOM_URL, status=status, **kwargs)
    else:
        mock.get(CUSTOM_URL, status=status, **kwargs)
    record = health_check_now(integration=integration)
    integration.refresh_from_db()
    return record


def issues(integration, status=None) -> list[ConnectionIssue]:
    found = ConnectionIssue.objects.filter(integration=integration).order_by("first_seen_at")
    return list(found.filter(status=status) if status else found)


def kinds_open(integration) -> set[str]:
    return {i.kind for i in issues(integration, "open")}


def run_sequence(integration, statuses) -> list[str]:
    """Check once per answer; the integration's health status after each."""
    seen = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for status in statuses:
            if isinstance(status, type) and issubclass(status, Exception):
                check(mock, integration, body=status("down"))
            else:
                check(mock, integration, status)
            seen.append(integration.health_status)
    return seen


# --- each kind a check can see -------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403])
def test_401_and_403_open_credentials_rejected_at_once_and_healthy_checks_resolve_it(organization, code):
    integration = custom(organization)
    assert run_sequence(integration, [code]) == [UNHEALTHY]
    (issue,) = issues(integration)
    assert (issue.kind, issue.status, issue.count) == ("credentials_rejected", "open", 1)
    assert f"HTTP {code}" in issue.message and SECRET not in issue.message
    assert run_sequence(integration, [200, 200]) == [DEGRADED, DEGRADED]  # recovering: not healthy yet
    assert run_sequence(integration, [200]) == [HEALTHY]
    assert issues(integration)[0].status == "resolved"


@pytest.mark.parametrize(
    "answer", [500, 503, requests.ConnectTimeout, requests.ConnectionError], ids=["500", "503", "timeout", "refused"]
)
def test_provider_unavailable_opens_after_three_failures_in_a_row(organization, answer):
    integration = custom(organization)
    run_sequence(integration, [answer, answer])
    assert issues(integration, "pending") and not issues(integration, "open")
    run_sequence(integration, [answer])
    assert kinds_open(integration) == {"provider_unavailable"}
    assert issues(integration)[0].count == 3
    run_sequence(integration, [200, 200, 200])
    assert not kinds_open(integration) and integration.health_status == HEALTHY


def test_429_opens_rate_limited_after_three_with_retry_after(organization):
    integration = custom(organization)
    with responses.RequestsMock() as mock:
        for _ in range(3):
            check(mock, integration, 429, headers={"Retry-After": "120"})
    (issue,) = issues(integration)
    assert (issue.kind, issue.status, issue.details) == ("rate_limited", "open", {"retry_after": 120})
    run_sequence(integration, [200, 200, 200])
    assert issues(integration)[0].status == "resolved"


def test_a_stored_config_that_no_longer_validates_is_config_invalid(organization):
    # e.g. a key the catalogue dropped: written around the services, as an old row would be
    integration = custom(organization)
    Integration.objects.filter(pk=integration.pk).update(
        config={"health_check_url": CUSTOM_URL, "category": "communication", "legacy_region": "eu"}
    )
    integration.refresh_from_db()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        record = check(mock, integration)
        assert not mock.calls  # not checked with a config we would refuse
    assert record.status == UNHEALTHY and "config.legacy_region" in record.error
    (issue,) = issues(integration)
    assert (issue.kind, issue.status) == ("config_invalid", "open")
    assert "legacy_region" in issue.details["errors"]["config"]
    Integration.objects.filter(pk=integration.pk).update(config={"health_check_url": CUSTOM_URL})
    integration.refresh_from_db()
    run_sequence(integration, [200, 200, 200])
    assert issues(integration)[0].status == "resolved"


def test_no_health_check_url_and_an_unknown_provider_are_config_invalid(organization):
    no_url = IntegrationFactory(organization=organization, provider="custom", config={})
    unknown = IntegrationFactory(organization=organization, provider="myspace")
    for integration in (no_url, unknown):
        health_check_now(integration=integration)
        assert [(i.kind, i.status) for i in issues(integration)] == [("config_invalid", "open")]
    assert "health_check_url" in issues(no_url)[0].message
    assert "myspace" in issues(unknown)[0].message


def test_slack_invalid_auth_is_credentials_rejected(organization):
    slack = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, json={"ok": False, "error": "invalid_auth"})
        health_check_now(integration=slack)
    assert [(i.kind, i.status) for i in issues(slack)] == [("credentials_rejected", "open")]


def test_an_active_oauth_integration_without_tokens_needs_reauthorization(organization):
    integration = oauth(organization, credentials={})
    health_check_now(integration=integration)
    (issue,) = issues(integration)
    assert (issue.kind, issue.status) == ("reauthorization_required", "open")
    assert issue.details["reconnect_url"].endswith(f"/integrations/integration/{integration.pk}/reconnect/")
    assert Event.objects.filter(type="integration.reauthorization_required").count() == 1
    pending = oauth(organization, name="never authorized", credentials={}, status=Integration.Status.PENDING)
    with pytest.raises(IntegrationNotConnected):  # waiting for its first authorization: not checked
        health_check_now(integration=pending)
    assert issues(pending) == []  # and not an issue


def test_a_grant_marked_dead_is_never_healthy_even_while_its_token_still_works(organization):
    integration = oauth(organization, needs_reauthorization=True, status=Integration.Status.ERROR)
    with responses.RequestsMock() as mock:
        mock.get(GOOGLE_URL, json={"id": "primary"})
        for _ in range(4):
            record = health_check_now(integration=integration)
    integration.refresh_from_db()
    assert record.status == DEGRADED and "reauthorization_required" in record.error
    assert integration.health_status == DEGRADED
    (issue,) = issues(integration)
    assert (issue.kind, issue.status, issue.count) == ("reauthorization_required", "open", 4)
    assert Event.objects.filter(type="integration.reauthorization_required").count() == 1


def test_a_refresh_failure_during_a_check_is_recorded_once(organization):
    """The token path records its own outcome; the check does not count it a second time."""
    integration = oauth(organization, token_expires_at=timezone.now())
    with responses.RequestsMock() as mock:
        mock.post("https://oauth2.googleapis.com/token", status=400, json={"error": "invalid_grant"})
        health_check_now(integration=integration)
    (issue,) = issues(integration)
    assert (issue.kind, issue.count) == ("reauthorization_required", 1)


def test_certificate_expiring_from_a_check_result_opens_and_resolves(organization):
    """SAML checks name `certificate_expiring` (degraded within 30 days); healthy ones clear it."""
    integration = IntegrationFactory(organization=organization)

    def record(status, **kwargs):
        health_record_results(results=[CheckResult(integration.pk, status, timezone.now(), **kwargs)])
        integration.refresh_from_db()

    record(
        DEGRADED,
        error="Certificate expires in 12 days.",
        issue_kind=Kind.CERTIFICATE_EXPIRING,
        issue_details={"expires_at": "2027-01-01T00:00:00+00:00"},
    )
    (issue,) = issues(integration)
    assert (issue.kind, issue.status, issue.details["expires_at"]) == (
        "certificate_expiring",
        "open",
        "2027-01-01T00:00:00+00:00",
    )
    for _ in range(2):
        record(HEALTHY)
        assert integration.health_status == DEGRADED
    record(HEALTHY)
    assert integration.health_status == HEALTHY and issues(integration)[0].status == "resolved"


# --- no flapping, no contradiction ------------------------------------------------------------


def test_alternating_failures_never_open_a_transient_issue(organization):
    integration = custom(organization)
    health = run_sequence(integration, [503, 200] * 6 + [429, 200] * 3)
    assert not ConnectionIssue.objects.filter(status="open").exists()
    assert not Event.objects.filter(type__startswith="integration.issue").exists()
    assert health[-1] == HEALTHY


def test_once_open_alternating_results_never_resolve_it_and_health_stays_consistent(organization):
    integration = custom(organization)
    run_sequence(integration, [503, 503, 503])
    health = run_sequence(integration, [200, 200, 503] * 4)
    assert kinds_open(integration) == {"provider_unavailable"}
    assert HEALTHY not in health  # an open issue: never healthy
    assert Event.objects.filter(type="integration.issue.opened").count() == 1
    assert not Event.objects.filter(type="integration.issue.resolved").exists()


@pytest.mark.parametrize("kind", [Kind.CREDENTIALS_REJECTED, Kind.REAUTHORIZATION_REQUIRED, Kind.MISSING_SCOPES])
def test_an_integration_with_an_open_issue_is_never_healthy(organization, kind):
    integration = custom(organization)
    run_sequence(integration, [200])
    assert integration.health_status == HEALTHY
    issue_detected(integration=integration, kind=kind, message="found elsewhere")  # e.g. by a token refresh
    integration.refresh_from_db()
    assert integration.health_status == DEGRADED  # at once, not at the next check
    health = run_sequence(integration, [200] * 4)
    if kind == Kind.CREDENTIALS_REJECTED:  # a check sees it: three good checks resolve it
        assert health == [DEGRADED, DEGRADED, HEALTHY, HEALTHY]
    else:  # a check cannot see it: only the token side resolves it
        assert health == [DEGRADED] * 4 and kinds_open(integration) == {kind}


# --- cost -------------------------------------------------------------------------------------


def _issue_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "integration_connection_issues" in q["sql"]]


def test_healthy_integrations_without_issues_cost_no_issue_query(organization):
    for n in range(5):
        custom(organization, name=f"c{n}")
    with responses.RequestsMock() as mock, CaptureQueriesContext(connection) as captured:
        mock.get(CUSTOM_URL)
        health_run(force=True)
    issue_queries = [sql for sql in _issue_queries(captured.captured_queries) if "EXISTS" not in sql.upper()]
    assert issue_queries == []  # only the EXISTS folded into the integrations' SELECT


def test_recording_issues_takes_a_constant_number_of_queries(organization):
    def run(status):
        with responses.RequestsMock() as mock:
            mock.get(CUSTOM_URL, status=status)
            return health_run(force=True)

    few = [custom(organization, name=f"a{n}") for n in range(2)]
    for _ in range(3):
        run(503)  # pending, pending, open
    with CaptureQueriesContext(connection) as small:
        run(503)
    for n in range(30):
        custom(organization, name=f"b{n}")
    for _ in range(3):
        run(503)
    with CaptureQueriesContext(connection) as large:
        assert len(run(503).checks) == 32
    # the EXISTS in the integrations' SELECT, the load of the active issues, one bulk update
    assert len(_issue_queries(large.captured_queries)) == len(_issue_queries(small.captured_queries)) == 3
    assert ConnectionIssue.objects.filter(status="open").count() == 32
    assert {i.count for i in issues(few[0])} == {8}  # every check counted, none lost


def test_a_check_result_for_a_deleted_integration_is_ignored(organization):
    health_record_results(results=[CheckResult(uuid.uuid4(), UNHEALTHY, timezone.now(), issue_kind="config_invalid")])
    assert not ConnectionIssue.objects.exists()


# --- SAML: the metadata's findings and the certificate's, one after the other ----------------


def test_saml_provider_unavailable_resolves_while_the_certificate_is_expiring_then_renewal_resolves_that(
    organization,
):
    """Metadata that loads shows the IdP is reachable and the config valid, whatever the
    certificate says: an outage opened before resolves during the expiry warning."""
    idp = Receiver().start()
    try:
        url = idp.url.replace("/hook", "/saml/metadata")
        integration = integration_create(
            organization=organization,
            name="IdP",
            provider="custom",
            auth_type="saml",
            config={"idp_metadata_url": url, "idp_entity_id": IDP_ENTITY_ID},
            credentials={},
        )

        def serve(status=200, cert=None) -> str:
            body = metadata_xml(certs=[cert.cert_b64]).encode() if cert else b"unavailable"
            idp.default = Reply(status=status, body=body, headers={"Content-Type": "application/samlmetadata+xml"})
            record = health_record_results(results=[check_integration(integration)])[0]
            integration.refresh_from_db()
            return record.status

        assert [serve(503) for _ in range(3)] == [UNHEALTHY] * 3
        assert kinds_open(integration) == {"provider_unavailable"}

        expiring = key_pair(valid_for=timedelta(days=10))
        assert serve(cert=expiring) == DEGRADED
        assert kinds_open(integration) == {"provider_unavailable", "certificate_expiring"}
        (cert_issue,) = issues(integration, "open")[1:]
        assert cert_issue.details["days_left"] == 10 and "expires in 10 days" in cert_issue.message
        assert [serve(cert=expiring) for _ in range(2)] == [DEGRADED, DEGRADED]
        # three loads in a row: a sustained recovery of the IdP, the certificate still expiring
        assert kinds_open(integration) == {"certificate_expiring"}
        assert issues(integration)[0].status == "resolved"
        assert integration.health_status == DEGRADED

        renewed = key_pair(valid_for=timedelta(days=365), label="renewed")
        assert [serve(cert=renewed) for _ in range(3)] == [DEGRADED, DEGRADED, HEALTHY]
        assert kinds_open(integration) == set()
        assert integration.health_status == HEALTHY
        assert {i.kind: i.status for i in issues(integration)} == {
            "provider_unavailable": "resolved",
            "certificate_expiring": "resolved",
        }
        assert Event.objects.filter(type="integration.issue.resolved").count() == 2
    finally:
        idp.stop()
