from http import HTTPStatus

import pytest
import responses
from django.utils import timezone

from health.models import ClusterHeartbeat, HealthCheck
from integrations.models import Integration
from tests.integrations.factories import OAuthIntegrationFactory

from .conftest import CUSTOM_URL, SECRET, custom

pytestmark = pytest.mark.django_db

INTEGRATIONS = "/admin/integrations/integration/"
CHECKS = "/admin/health/healthcheck/"


@pytest.fixture
def integration(organization):
    integration = custom(organization, name="status page")
    now = timezone.now()
    for n, status in enumerate(["healthy", "degraded", "unhealthy"]):
        HealthCheck.objects.create(
            integration=integration,
            status=status,
            response_time_ms=120,
            error="Provider error: HTTP 503 from status.example.com." if status == "unhealthy" else "",
            checked_at=now - timezone.timedelta(minutes=5 * n),
        )
    return integration


@pytest.mark.parametrize(
    "path",
    [
        INTEGRATIONS,
        f"{CHECKS}",
        f"{CHECKS}?q=status",
        f"{CHECKS}?status__exact=unhealthy",
        "/admin/health/clusterheartbeat/",
    ],
)
def test_admin_pages_load_without_secrets(admin_client, integration, path):
    ClusterHeartbeat.objects.create(name="c", beat_at=timezone.now())
    response = admin_client.get(path)
    assert response.status_code == HTTPStatus.OK
    assert SECRET not in response.content.decode()


def test_changelist_shows_an_uptime_strip_without_a_query_per_row(
    admin_client, integration, organization, django_assert_max_num_queries
):
    for n in range(10):
        custom(organization, name=f"more {n}")
    with django_assert_max_num_queries(12):
        content = admin_client.get(INTEGRATIONS).content.decode()
    assert content.count("display:inline-block;width:6px") == 3
    assert "120 ms" in content


def test_change_page_has_badge_strip_and_history_inline(admin_client, integration):
    response = admin_client.get(f"{INTEGRATIONS}{integration.pk}/change/")
    content = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "Health history (latest 20)" in content
    assert "Provider error: HTTP 503" in content
    assert "display:inline-block;width:6px" in content
    assert SECRET not in content


def test_health_checks_are_read_only(admin_client, integration):
    check = HealthCheck.objects.first()
    assert admin_client.get(f"{CHECKS}add/").status_code == HTTPStatus.FORBIDDEN
    response = admin_client.post(f"{CHECKS}{check.pk}/change/", {"status": "healthy"})
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_check_now_action(admin_client, integration):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=401)
        response = admin_client.post(
            INTEGRATIONS, {"action": "check_now", "_selected_action": [str(integration.pk)]}, follow=True
        )
    assert response.status_code == HTTPStatus.OK
    assert "Checked 1 integration: 1 unhealthy." in response.content.decode()
    assert HealthCheck.objects.filter(integration=integration).count() == 4


def test_check_now_reports_never_connected_integrations_without_marking_them(admin_client, integration, organization):
    calendar = OAuthIntegrationFactory(organization=organization, name="Calendar")
    selected = [str(integration.pk), str(calendar.pk)]
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL)
        response = admin_client.post(INTEGRATIONS, {"action": "check_now", "_selected_action": selected}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert "Checked 1 integration: 1 healthy." in messages
    assert any(
        m.startswith("Not checked, not connected yet (health stays unknown): “Calendar” (never authorized")
        for m in messages
    ), messages
    calendar.refresh_from_db()
    assert calendar.health_status == Integration.HealthStatus.UNKNOWN
    assert not HealthCheck.objects.filter(integration=calendar).exists()


def test_unknown_health_says_not_connected_or_not_checked_yet(admin_client, organization):
    OAuthIntegrationFactory(organization=organization, name="Calendar")
    custom(organization, name="Fresh")
    html = admin_client.get(INTEGRATIONS).content.decode()
    assert ">Not connected</span>" in html and ">Not checked yet</span>" in html
    assert ">Unhealthy</span>" not in html
