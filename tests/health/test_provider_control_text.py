"""A provider's failure text with a NUL in it does not cost a health run its batch
(health/checks.py reads it, health/services.py announces it)."""

import pytest
import responses

from health.models import HealthCheck
from health.services import health_run
from integrations.models import Integration
from tests.health.conftest import CUSTOM_URL, SLACK_URL, custom, oauth
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def test_a_slack_error_with_a_nul_is_recorded_with_the_rest_of_the_batch(organization, settings):
    settings.HEALTH_UNHEALTHY_THRESHOLD = 1  # the first failure marks it and is announced
    slack = oauth(organization, "slack")
    other = custom(organization)
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, json={"ok": False, "error": "fatal\u0000error"})
        mock.get(CUSTOM_URL, json={})
        summary = health_run(integration_ids=[slack.pk, other.pk], force=True)

    assert len(summary.checks) == 2
    record = HealthCheck.objects.get(integration=slack)
    assert record.status == "unhealthy"
    assert "fatal error" in record.error and "\x00" not in record.error
    assert HealthCheck.objects.get(integration=other).status == "healthy"
    slack.refresh_from_db()
    assert slack.status == Integration.Status.ERROR and slack.health_status == "unhealthy"
    assert Event.objects.filter(organization=organization, type="integration.unhealthy").exists()


def test_a_transition_whose_event_is_refused_is_still_recorded(organization, settings, caplog):
    settings.HEALTH_UNHEALTHY_THRESHOLD = 1
    settings.WEBHOOKS_MAX_PAYLOAD_BYTES = 50  # the integration.unhealthy event is refused
    slack = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, json={"ok": False, "error": "fatal_error"})
        summary = health_run(integration_ids=[slack.pk], force=True)

    assert len(summary.checks) == 1
    slack.refresh_from_db()
    assert slack.status == Integration.Status.ERROR
    assert HealthCheck.objects.get(integration=slack).transition == HealthCheck.Transition.UNHEALTHY
    assert "Could not emit integration.unhealthy" in caplog.text
