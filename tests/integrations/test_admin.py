import logging
from http import HTTPStatus

import pytest

from integrations.models import Integration
from tests.integrations.conftest import SENTINEL
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory

pytestmark = pytest.mark.django_db

ADMIN = "/admin/integrations/integration/"


@pytest.fixture
def integration(organization):
    return IntegrationFactory(organization=organization, credentials={"api_key": SENTINEL}, last_error="boom")


@pytest.mark.parametrize(
    "url",
    [
        ADMIN,
        f"{ADMIN}?q=integration",
        f"{ADMIN}?q=acme",
        f"{ADMIN}?provider__exact=rippling&health_status__exact=unknown",
        f"{ADMIN}?status__exact=active",
        f"{ADMIN}add/",
    ],
)
def test_admin_pages_load_without_secrets(admin_client, integration, url):
    OAuthIntegrationFactory(organization=integration.organization)
    response = admin_client.get(url)
    assert response.status_code == HTTPStatus.OK
    assert SENTINEL not in response.content.decode()


def test_admin_changelist_shows_badges(admin_client, integration):
    content = admin_client.get(ADMIN).content.decode()
    assert "border-radius" in content
    assert "Active" in content


def test_admin_change_page_never_renders_credentials(admin_client, integration):
    response = admin_client.get(f"{ADMIN}{integration.pk}/change/")
    assert response.status_code == HTTPStatus.OK
    content = response.content.decode()
    assert SENTINEL not in content
    assert '<textarea name="new_credentials"' in content
    assert "api_key" in content  # the stored key names are shown


def _change_data(integration, **overrides):
    data = {
        "name": integration.name,
        "provider": integration.provider,
        "auth_type": integration.auth_type,
        "config": "{}",
        "new_credentials": "",
    }
    data.update(overrides)
    return data


def test_admin_blank_credentials_keep_the_stored_ones(admin_client, integration):
    response = admin_client.post(f"{ADMIN}{integration.pk}/change/", _change_data(integration, name="Renamed"))
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    integration.refresh_from_db()
    assert integration.name == "Renamed"
    assert integration.credentials == {"api_key": SENTINEL}


def test_admin_new_credentials_replace_them(admin_client, integration):
    response = admin_client.post(
        f"{ADMIN}{integration.pk}/change/", _change_data(integration, new_credentials='{"api_key": "replaced"}')
    )
    assert response.status_code == HTTPStatus.FOUND
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": "replaced"}


def test_admin_invalid_credentials_rerender_without_the_value(admin_client, integration):
    response = admin_client.post(
        f"{ADMIN}{integration.pk}/change/", _change_data(integration, new_credentials=f'{{"token": "{SENTINEL}x"}}')
    )
    assert response.status_code == HTTPStatus.OK  # form errors
    assert SENTINEL not in response.content.decode()
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": SENTINEL}


def test_admin_add_uses_the_service(admin_client, organization, caplog):
    caplog.set_level(logging.DEBUG)
    response = admin_client.post(
        f"{ADMIN}add/",
        {
            "organization": organization.pk,
            "name": "From admin",
            "provider": "bamboohr",
            "auth_type": "api_key",
            "config": '{"company_domain": "acme"}',
            "new_credentials": f'{{"api_key": "{SENTINEL}"}}',
        },
    )
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    integration = Integration.objects.get(name="From admin")
    assert integration.status == Integration.Status.ACTIVE
    assert integration.credentials == {"api_key": SENTINEL}
    assert SENTINEL not in caplog.text


def test_admin_add_with_bad_config_shows_errors(admin_client, organization):
    response = admin_client.post(
        f"{ADMIN}add/",
        {
            "organization": organization.pk,
            "name": "Bad",
            "provider": "bamboohr",
            "auth_type": "api_key",
            "config": "{}",
            "new_credentials": '{"api_key": "k"}',
        },
    )
    assert response.status_code == HTTPStatus.OK
    assert "company_domain" in response.content.decode()
    assert not Integration.objects.exists()


def test_admin_actions_call_services(admin_client, integration, organization):
    pending = OAuthIntegrationFactory(organization=organization)
    response = admin_client.post(
        ADMIN, {"action": "deactivate", "_selected_action": [str(integration.pk)]}, follow=True
    )
    integration.refresh_from_db()
    assert integration.status == Integration.Status.INACTIVE
    assert "Deactivated 1" in response.content.decode()
    response = admin_client.post(
        ADMIN, {"action": "activate", "_selected_action": [str(integration.pk), str(pending.pk)]}, follow=True
    )
    integration.refresh_from_db()
    pending.refresh_from_db()
    assert integration.status == Integration.Status.ACTIVE
    assert pending.status == Integration.Status.PENDING  # not authorized yet: refused with a message
    assert "authorize it first" in response.content.decode()


def test_admin_authorize_link_redirects_to_the_provider(admin_client, organization, settings):
    from integrations.services import integration_create

    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = SENTINEL
    google = integration_create(organization=organization, name="G", provider="google_calendar", auth_type="oauth2")
    page = admin_client.get(f"{ADMIN}{google.pk}/change/").content.decode()
    assert f"{ADMIN}{google.pk}/authorize/" in page
    assert "Token expires at" in page or "token expires at" in page.lower()
    response = admin_client.post(f"{ADMIN}{google.pk}/authorize/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    assert SENTINEL not in response["Location"]


def test_admin_authorize_without_client_reports_the_problem(admin_client, organization, settings):
    from integrations.services import integration_create

    settings.GOOGLE_CLIENT_ID = ""
    google = integration_create(organization=organization, name="G", provider="google_calendar", auth_type="oauth2")
    response = admin_client.post(f"{ADMIN}{google.pk}/authorize/", follow=True)
    assert response.status_code == HTTPStatus.OK
    assert "GOOGLE_CLIENT_ID" in response.content.decode()


def test_admin_never_shows_tokens(admin_client, organization):
    integration = OAuthIntegrationFactory(
        organization=organization, credentials={"access_token": SENTINEL, "refresh_token": SENTINEL + "r"}
    )
    for url in [ADMIN, f"{ADMIN}{integration.pk}/change/"]:
        assert SENTINEL not in admin_client.get(url).content.decode()
