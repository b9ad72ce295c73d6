from io import StringIO

import pytest
import responses
from django.core.management import CommandError, call_command

from health.models import HealthCheck
from tests.factories import OrganizationFactory
from tests.integrations.factories import OAuthIntegrationFactory

from .conftest import CUSTOM_URL, SLACK_URL, custom, oauth

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("run_health_checks", *args, stdout=out)
    return out.getvalue()


def test_all_healthy_exits_zero_with_progress_and_summary(organization):
    custom(organization, name="one")
    custom(organization, name="two")
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        out = run("-v", "2")
    assert "checked 2/2" in out
    assert "STATUS" in out and "one" in out and "two" in out
    assert "Checked 2 integrations" in out and "2 healthy, 0 degraded, 0 unhealthy" in out


def test_an_unhealthy_integration_exits_one_and_is_listed(organization):
    custom(organization, name="fine")
    oauth(organization, "slack", name="broken slack")
    out = StringIO()
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        mock.get(SLACK_URL, json={"ok": False, "error": "token_revoked"})
        with pytest.raises(CommandError) as error:
            call_command("run_health_checks", stdout=out)
    assert error.value.returncode == 1
    assert str(error.value) == "1 integration unhealthy."
    text = out.getvalue()
    assert "broken slack" in text and "token_revoked" in text
    assert "fine" not in text.split("Checked")[0]  # healthy rows only with -v 2


def test_filters_by_provider_organization_and_ids(organization):
    other = OrganizationFactory(slug="other")
    mine = custom(organization, name="mine")
    theirs = custom(other, name="theirs")
    slack = oauth(organization, "slack", name="slack")
    with responses.RequestsMock() as mock:
        mock.get(SLACK_URL, json={"ok": True})
        run("--provider", "slack")
    assert list(HealthCheck.objects.values_list("integration", flat=True)) == [slack.pk]
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        run("--organization", "other")
    assert HealthCheck.objects.filter(integration=theirs).count() == 1
    assert not HealthCheck.objects.filter(integration=mine).exists()
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        run("--integration", str(mine.pk), "--integration", str(theirs.pk))
    assert HealthCheck.objects.filter(integration=mine).count() == 1
    assert HealthCheck.objects.filter(integration=theirs).count() == 2
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        run("--integration", str(mine.pk), "--organization", "acme", "--provider", "custom")
    assert HealthCheck.objects.filter(integration=mine).count() == 2


def test_nothing_matching_is_not_an_error(organization):
    with responses.RequestsMock():
        assert "No integrations match." in run("--provider", "slack")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "myspace"], "Unknown provider 'myspace'"),
        (["--organization", "nope"], "Unknown organization 'nope'"),
        (["--integration", "not-a-uuid"], "Not an integration id: 'not-a-uuid'"),
        (["--integration", "00000000-0000-0000-0000-000000000000"], "Unknown integration id:"),
    ],
)
def test_bad_arguments_fail_with_one_line(organization, args, message):
    custom(organization)
    with responses.RequestsMock(), pytest.raises(CommandError) as error:
        run(*args)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not HealthCheck.objects.exists()


def test_prune_command_validates_its_arguments():
    with pytest.raises(CommandError, match="--older-than-days"):
        call_command("prune_health_checks", "--older-than-days", "-1", stdout=StringIO())
    out = StringIO()
    call_command("prune_health_checks", "--dry-run", stdout=out)
    assert "Would delete 0 health checks older than 30 days." in out.getvalue()


def test_never_connected_integrations_are_listed_not_checked_and_do_not_fail_the_run(organization):
    fine = custom(organization, name="fine")
    calendar = OAuthIntegrationFactory(organization=organization, name="calendar")
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        out = run("--integration", str(fine.pk), "--integration", str(calendar.pk))  # exit 0: nothing unhealthy
    [row] = [line for line in out.splitlines() if line.startswith("not connected")]
    assert "calendar" in row and "never authorized" in row
    assert "Checked 1 integration in" in out and "; 1 not connected (not checked)." in out
    assert not HealthCheck.objects.filter(integration=calendar).exists()
