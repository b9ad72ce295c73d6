"""The admin change page of a jwt integration: the consent URL to visit, a button to mint."""

import json
from http import HTTPStatus

import pytest
import responses

from integrations.grants import consent_url
from integrations.models import Integration
from tests.integrations.grants.conftest import DOCUSIGN_TOKEN_URL, docusign_jwt, google_jwt
from tests.integrations.grants.keys import rsa_pem

pytestmark = pytest.mark.django_db

ADMIN = "/admin/integrations/integration/"
TOKEN = json.dumps({"access_token": "minted-in-admin", "token_type": "Bearer", "expires_in": 3600})


def test_docusign_change_page_shows_the_consent_url_and_no_key(admin_client, organization):
    integration = docusign_jwt(organization)
    page = admin_client.get(f"{ADMIN}{integration.pk}/change/").content.decode()
    assert consent_url(integration).replace("&", "&amp;") in page
    assert f"{ADMIN}{integration.pk}/mint/" in page
    assert not any(line in page for line in rsa_pem().splitlines()[1:-1])


def test_google_change_page_has_the_mint_button_and_no_consent_link(admin_client, organization):
    integration = google_jwt(organization)
    page = admin_client.get(f"{ADMIN}{integration.pk}/change/").content.decode()
    assert f"{ADMIN}{integration.pk}/mint/" in page
    assert "Consent:" not in page


def test_mint_button_mints_after_consent_and_reports(admin_client, organization):
    integration = docusign_jwt(organization)
    Integration.objects.filter(pk=integration.pk).update(
        needs_reauthorization=True, status=Integration.Status.ERROR, last_error="Re-authorization required: consent"
    )
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, body=TOKEN, headers={"Content-Type": "application/json"})
        response = admin_client.post(f"{ADMIN}{integration.pk}/mint/", follow=True)
    assert response.status_code == HTTPStatus.OK
    assert "Token minted" in response.content.decode()
    integration.refresh_from_db()
    assert (integration.status, integration.needs_reauthorization) == (Integration.Status.ACTIVE, False)
    assert integration.credentials["access_token"] == "minted-in-admin"


def test_mint_button_reports_a_refusal(admin_client, organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, status=HTTPStatus.BAD_REQUEST, json={"error": "consent_required"})
        response = admin_client.post(f"{ADMIN}{integration.pk}/mint/", follow=True)
    assert "No token minted" in response.content.decode()
    assert "consent_required" in response.content.decode()


def test_mint_needs_a_post(admin_client, organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock():
        assert admin_client.get(f"{ADMIN}{integration.pk}/mint/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
