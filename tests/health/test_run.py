"""Runs: concurrency, atomic claims (no double checks), bulk recording, schedules, pruning."""

import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
import responses
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from django_q.models import Schedule

from health.models import HealthCheck, HealthState
from health.services import health_history_prune, health_run
from health.tasks import heartbeat, prune_history, run_checks
from integrations.models import Integration
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory
from tests.webhooks.receiver import Reply

from .conftest import CUSTOM_URL, custom

pytestmark = pytest.mark.django_db


def test_a_run_checks_concurrently(organization, receiver, settings):
    settings.HEALTH_CHECK_CONCURRENCY = 10
    settings.HEALTH_CHECK_BATCH_SIZE = 20
    receiver.default = Reply(delay=0.2)
    for n in range(20):
        custom(organization, receiver.url, name=f"c{n}")
    started = time.perf_counter()
    summary = health_run()
    elapsed = time.perf_counter() - started
    assert len(receiver.requests) == 20
    assert summary.counts["healthy"] == 20
    assert elapsed < 1.5, f"20 checks x 200 ms took {elapsed:.2f} s: not concurrent"  # serially: 4 s
    assert HealthCheck.objects.filter(response_time_ms__gte=200).count() == 20


def test_a_run_checks_active_and_error_integrations_only(organization):
    active = custom(organization, name="active")
    errored = custom(organization, name="errored", status=Integration.Status.ERROR)
    custom(organization, name="inactive", status=Integration.Status.INACTIVE)
    custom(organization, name="pending", status=Integration.Status.PENDING)
    custom(organization, name="dead grant", status=Integration.Status.ERROR, needs_reauthorization=True)
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        summary = health_run()
    assert {check.integration_id for check in summary.checks} == {active.pk, errored.pk}


def test_a_scheduled_run_skips_integrations_checked_recently(organization):
    custom(organization, name="fresh", last_health_check_at=timezone.now() - timedelta(minutes=1))
    due = custom(organization, name="due", last_health_check_at=timezone.now() - timedelta(minutes=4))
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        first = health_run()
        second = health_run()  # an overlapping / repeated run finds nothing due
    assert [c.integration_id for c in first.checks] == [due.pk]
    assert second.checks == []


def test_leased_integrations_are_skipped(organization):
    leased = custom(organization, name="leased")
    free = custom(organization, name="free")
    HealthState.objects.create(integration=leased, leased_until=timezone.now() + timedelta(minutes=1))
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        summary = health_run(force=True)
    assert [c.integration_id for c in summary.checks] == [free.pk]
    assert summary.skipped == 1
    assert HealthState.objects.get(pk=free.pk).leased_until is None  # released after recording


def test_an_expired_lease_is_claimed_again(organization):
    integration = custom(organization)
    HealthState.objects.create(integration=integration, leased_until=timezone.now() - timedelta(seconds=1))
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        assert len(health_run().checks) == 1


@pytest.mark.django_db(transaction=True)
def test_overlapping_runs_never_check_an_integration_twice(organization, receiver, settings):
    settings.HEALTH_CHECK_CONCURRENCY = 5
    settings.HEALTH_CHECK_BATCH_SIZE = 5
    receiver.default = Reply(delay=0.05)
    for n in range(30):
        custom(organization, receiver.url, name=f"c{n}")
    summaries, errors = [], []

    def run():
        try:
            summaries.append(health_run())
        except Exception as error:  # pragma: no cover - surfaced below
            errors.append(error)
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(receiver.requests) == 30
    assert HealthCheck.objects.count() == 30
    assert HealthCheck.objects.values("integration").distinct().count() == 30
    assert sum(len(s.checks) for s in summaries) == 30


def test_recording_is_bulk_whatever_the_number_of_integrations(organization, django_assert_max_num_queries):
    def run():
        with responses.RequestsMock() as mock:
            mock.get(CUSTOM_URL)
            return health_run(force=True)

    for n in range(2):
        custom(organization, name=f"a{n}")
    with django_assert_max_num_queries(18) as few:
        assert len(run().checks) == 2
    for n in range(40):
        custom(organization, name=f"b{n}")
    with django_assert_max_num_queries(18) as many:
        assert len(run().checks) == 42
    assert len(many.captured_queries) == len(few.captured_queries)  # one batch: no query per integration


def test_setup_schedules_creates_the_health_schedules(settings):
    settings.HEALTH_CHECK_INTERVAL_MINUTES = 5
    call_command("setup_schedules", stdout=StringIO())
    run = Schedule.objects.get(name="health.run_checks")
    assert (run.func, run.schedule_type, run.minutes) == ("health.tasks.run_checks", Schedule.MINUTES, 5)
    assert Schedule.objects.get(name="health.heartbeat").minutes == 1
    assert Schedule.objects.get(name="health.prune_history").func == "health.tasks.prune_history"
    settings.HEALTH_CHECK_INTERVAL_MINUTES = 10
    call_command("setup_schedules", stdout=StringIO())
    assert Schedule.objects.get(name="health.run_checks").minutes == 10
    assert Schedule.objects.filter(name="health.run_checks").count() == 1


def test_the_scheduled_task_runs_a_check(organization):
    custom(organization)
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=503)
        result = run_checks()
    assert result["checked"] == 1 and result["unhealthy"] == 1
    assert heartbeat()


def test_history_is_pruned_after_the_retention(organization, settings):
    settings.HEALTH_HISTORY_RETENTION_DAYS = 7
    integration = IntegrationFactory(organization=organization)
    now = timezone.now()
    for days in (1, 6, 8, 30):
        HealthCheck.objects.create(integration=integration, status="healthy", checked_at=now - timedelta(days=days))
    assert health_history_prune(dry_run=True) == 2
    assert HealthCheck.objects.count() == 4
    assert prune_history() == 2
    assert sorted((now - c.checked_at).days for c in HealthCheck.objects.all()) == [1, 6]
    out = StringIO()
    call_command("prune_health_checks", "--older-than-days", "2", "--batch-size", "1", stdout=out)
    assert "Deleted 1 health check older than 2 days." in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_run_refreshes_expiring_tokens_in_its_worker_threads(organization):
    from tests.integrations.oauth_helpers import GOOGLE_TOKEN_URL, token_body

    from .conftest import GOOGLE_URL, oauth

    integration = oauth(organization, token="old-access", token_expires_at=timezone.now() + timedelta(seconds=30))
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_body("new-access", "new-refresh"), content_type="application/json")
        mock.get(GOOGLE_URL, json={}, match=[responses.matchers.header_matcher({"Authorization": "Bearer new-access"})])
        summary = health_run()
    assert summary.counts["healthy"] == 1
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "new-access"
    assert integration.token_expires_at > timezone.now() + timedelta(minutes=50)


def test_never_connected_integrations_are_set_aside_not_marked_unhealthy(organization):
    connected = custom(organization, name="connected")
    never_authorized = OAuthIntegrationFactory(organization=organization, name="calendar")
    # Written around the services: never authorized, with a stale red health. (An *active*
    # OAuth integration without tokens lost them: that is a connection issue, tests/health/test_issues.py.)
    no_tokens = OAuthIntegrationFactory(
        organization=organization, name="no tokens", status=Integration.Status.PENDING, health_status="unhealthy"
    )
    HealthState.objects.create(integration=no_tokens, consecutive_unhealthy=2)
    long_ago = timezone.now() - timedelta(days=3)
    Integration.objects.filter(pk__in=[never_authorized.pk, no_tokens.pk]).update(updated_at=long_ago)
    ids = [connected.pk, never_authorized.pk, no_tokens.pk]
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        summary = health_run(integration_ids=ids, force=True, progress=lambda done, total: None)
    assert [c.integration_id for c in summary.checks] == [connected.pk]
    assert {n.integration_id for n in summary.not_connected} == {never_authorized.pk, no_tokens.pk}
    assert all("never authorized" in n.reason for n in summary.not_connected)
    assert summary.skipped == 0 and summary.unhealthy == 0
    assert summary.as_dict()["not_connected"] == 2
    assert not HealthCheck.objects.filter(integration__in=[never_authorized, no_tokens]).exists()
    for integration in (never_authorized, no_tokens):
        integration.refresh_from_db()
        assert integration.health_status == Integration.HealthStatus.UNKNOWN
        assert integration.last_health_check_at is None
    state = HealthState.objects.get(pk=no_tokens.pk)
    assert state.leased_until is None and state.consecutive_unhealthy == 0  # released, count cleared
    assert no_tokens.updated_at > long_ago  # unhealthy → unknown: a change of state
    assert never_authorized.updated_at == long_ago  # unknown already: nothing changed


def test_a_scheduled_run_leaves_never_connected_integrations_alone(organization):
    no_credentials = IntegrationFactory(organization=organization, status=Integration.Status.ACTIVE, credentials={})
    with responses.RequestsMock():  # nothing is sent
        summary = health_run()
    assert summary.checks == [] and [n.integration_id for n in summary.not_connected] == [no_credentials.pk]
    assert Integration.objects.get(pk=no_credentials.pk).health_status == Integration.HealthStatus.UNKNOWN


def test_a_new_health_status_moves_updated_at_and_the_same_one_does_not(organization):
    integration = custom(organization)
    long_ago = timezone.now() - timedelta(days=3)
    Integration.objects.filter(pk=integration.pk).update(updated_at=long_ago)
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        health_run(integration_ids=[integration.pk], force=True)
    integration.refresh_from_db()
    assert integration.health_status == Integration.HealthStatus.HEALTHY
    assert integration.updated_at > long_ago  # unknown → healthy: a change of state
    Integration.objects.filter(pk=integration.pk).update(updated_at=long_ago)
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        health_run(integration_ids=[integration.pk], force=True)
    integration.refresh_from_db()
    assert integration.updated_at == long_ago  # healthy again: only last_health_check_at moved
    assert integration.last_health_check_at > long_ago
