"""The integration change page's "Check health now" button, its history rows, and the
health checks list's organization column."""

import re
from http import HTTPStatus

import pytest
import responses
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from health.models import HealthCheck
from organizations.models import Membership
from tests.factories import OrganizationFactory, UserFactory

from .conftest import CUSTOM_URL, SECRET, custom

pytestmark = pytest.mark.django_db

INTEGRATIONS = "/admin/integrations/integration/"


@pytest.fixture
def organization():
    return OrganizationFactory(slug="acme", name="Acme Recruiting Inc.")


@pytest.fixture
def integration(organization):
    return custom(organization, name="status page")


def _check_url(integration) -> str:
    return f"{INTEGRATIONS}{integration.pk}/check-health/"


def _staff_client(organization, role: str) -> Client:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in={"integrations", "health"}))
    Membership.objects.create(user=user, organization=organization, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_change_page_has_a_check_now_button_posting_to_the_check(admin_client, integration):
    page = admin_client.get(f"{INTEGRATIONS}{integration.pk}/change/").content.decode()
    assert re.search(
        rf'<button type="submit" class="button" formaction="{_check_url(integration)}" formmethod="post"[^>]*>'
        r"Check health now</button>",
        page,
    )


def test_check_now_checks_records_and_reports(admin_client, integration):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=200, json={"ok": True})
        response = admin_client.post(_check_url(integration), follow=True)
        assert len(mock.calls) == 1
        assert mock.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"
    assert response.redirect_chain[-1][0] == f"{INTEGRATIONS}{integration.pk}/change/"
    page = response.content.decode()
    assert "Health check: Healthy; " in page
    assert SECRET not in page
    check = HealthCheck.objects.get(integration=integration)
    assert check.status == HealthCheck.Status.HEALTHY
    assert check.http_status == HTTPStatus.OK
    integration.refresh_from_db()
    assert integration.health_status == "healthy"


def test_check_now_reports_a_failure(admin_client, integration):
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=503)
        page = admin_client.post(_check_url(integration), follow=True).content.decode()
    assert "Health check: Unhealthy; " in page
    assert "HTTP 503" in page
    assert HealthCheck.objects.get(integration=integration).status == HealthCheck.Status.UNHEALTHY


def test_check_now_is_a_post_with_csrf(integration, admin_user):
    assert Client().get(_check_url(integration)).status_code == HTTPStatus.FOUND  # to the login page
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get(_check_url(integration)).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert client.post(_check_url(integration)).status_code == HTTPStatus.FORBIDDEN  # no CSRF token
    assert not HealthCheck.objects.exists()


def test_check_now_needs_the_admin_role_in_the_integrations_organization(integration, organization):
    viewer = _staff_client(organization, "viewer")
    page = viewer.get(f"{INTEGRATIONS}{integration.pk}/change/").content.decode()
    assert "Recent checks" in page and "Check health now" not in page
    with responses.RequestsMock():  # no request may be made
        response = viewer.post(_check_url(integration))
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/admin/"
    stranger = _staff_client(OrganizationFactory(), "admin")
    assert stranger.post(_check_url(integration)).status_code == HTTPStatus.NOT_FOUND
    assert not HealthCheck.objects.exists()

    member = _staff_client(organization, "admin")
    with responses.RequestsMock() as mock:
        mock.get(CUSTOM_URL, status=200)
        assert member.post(_check_url(integration)).status_code == HTTPStatus.FOUND
    assert HealthCheck.objects.filter(integration=integration).count() == 1


def test_history_rows_start_with_their_time_not_the_checks_repr(admin_client, integration):
    check = HealthCheck.objects.create(
        integration=integration, status="healthy", response_time_ms=42, checked_at=timezone.now()
    )
    page = admin_client.get(f"{INTEGRATIONS}{integration.pk}/change/").content.decode()
    assert "Health history (latest 20)" in page
    assert str(check) not in page
    assert str(integration.pk) + " healthy at" not in page
    assert f'<a href="/admin/health/healthcheck/{check.pk}/change/">{check.checked_at:%Y-%m-%d %H:%M:%S}</a>' in page


def test_health_check_list_shows_the_organization_by_name(admin_client, integration):
    HealthCheck.objects.create(integration=integration, status="healthy", checked_at=timezone.now())
    page = admin_client.get("/admin/health/healthcheck/").content.decode()
    assert '<td class="field-organization">Acme Recruiting Inc.</td>' in page


def test_health_check_list_columns_fit_a_laptop_screen(admin_client, integration):
    error = "Connection failed (a-very-long-host-name-that-would-widen-the-table.example.com)."
    HealthCheck.objects.create(integration=integration, status="unhealthy", error=error, checked_at=timezone.now())
    page = admin_client.get("/admin/health/healthcheck/").content.decode()
    names = re.findall(r'<th scope="col" class="[^"]*column-([^" ]+)', page)
    assert names == [
        "checked_at",
        "integration_name",
        "organization",
        "status_badge",
        "milliseconds",
        "http",
        "short_error",
    ]
    assert f'<span title="{error}" style="overflow-wrap:anywhere">{error[:39]}…</span>' in page
