"""The OpenAPI schema and Swagger UI: public or behind authentication (API_DOCS_PUBLIC), and
the docs page loads nothing from the internet."""

import re
from http import HTTPStatus

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings

pytestmark = pytest.mark.django_db

DOCS_PATHS = ["/api/schema/", "/api/schema", "/api/docs/", "/api/docs"]
STATIC_URL = "/static/"


@pytest.mark.parametrize("path", DOCS_PATHS)
@override_settings(API_DOCS_PUBLIC=True)
def test_public_docs_need_no_authentication(anon_client, path):
    assert anon_client.get(path).status_code == HTTPStatus.OK


@pytest.mark.parametrize("path", DOCS_PATHS)
@override_settings(API_DOCS_PUBLIC=False)
def test_private_docs_refuse_anonymous_requests(anon_client, path):
    response = anon_client.get(path)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert b"openapi" not in response.content.lower()
    assert b"swagger-ui" not in response.content.lower()


@pytest.mark.parametrize("path", DOCS_PATHS)
@override_settings(API_DOCS_PUBLIC=False)
def test_private_docs_accept_an_api_key(api_client, path):
    assert api_client.get(path).status_code == HTTPStatus.OK


@override_settings(API_DOCS_PUBLIC=False)
def test_private_docs_accept_a_logged_in_user(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="reader", password="x"))
    assert client.get("/api/docs/").status_code == HTTPStatus.OK
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == HTTPStatus.OK
    assert "paths" in schema.json()


@override_settings(API_DOCS_PUBLIC=False)
def test_private_docs_refuse_a_revoked_key(api_client):
    api_client.api_key.revoked_at = api_client.api_key.created_at
    api_client.api_key.save(update_fields=["revoked_at"])
    assert api_client.get("/api/schema/").status_code == HTTPStatus.UNAUTHORIZED


def test_docs_page_loads_no_asset_from_the_internet(anon_client):
    html = anon_client.get("/api/docs/").content.decode()
    assert not re.findall(r"""https?://|//cdn|["']//""", html), "the docs page references an external URL"
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert len(assets) >= 3  # favicon, stylesheet, bundle, preset
    for asset in assets:
        assert asset.startswith(STATIC_URL), asset
        assert finders.find(asset.removeprefix(STATIC_URL)), f"{asset} is not a static file of the project"
