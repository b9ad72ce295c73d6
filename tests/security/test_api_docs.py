"""The OpenAPI schema, Swagger UI and ReDoc: public or behind authentication (API_DOCS_PUBLIC),
and the docs pages load nothing from the internet."""

import re
from http import HTTPStatus

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings

pytestmark = pytest.mark.django_db

DOCS_PATHS = ["/api/schema/", "/api/schema", "/api/docs/", "/api/docs", "/api/redoc/", "/api/redoc"]
PAGES = ["/api/docs/", "/api/redoc/"]
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
    assert b"redoc" not in response.content.lower()


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


@pytest.mark.parametrize(("path", "least_assets"), [("/api/docs/", 4), ("/api/redoc/", 1)])
def test_docs_pages_load_no_asset_from_the_internet(anon_client, path, least_assets):
    """Swagger UI (favicon, stylesheet, bundle, preset) and ReDoc (its bundle) come from
    drf-spectacular-sidecar's static files; drf-spectacular's ReDoc page loaded Google Fonts."""
    response = anon_client.get(path)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert not re.findall(r"""https?://|//cdn|["']//""", html), "the docs page references an external URL"
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert len(assets) >= least_assets, assets
    for asset in assets:
        assert asset.startswith(STATIC_URL), asset
        assert finders.find(asset.removeprefix(STATIC_URL)), f"{asset} is not a static file of the project"


def test_redoc_page_runs_the_sidecar_bundle_on_our_schema(anon_client):
    html = anon_client.get("/api/redoc/").content.decode()
    assert f'src="{STATIC_URL}drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"' in html
    assert 'spec-url="/api/schema' in html


def test_swagger_ui_does_not_send_the_schema_to_an_online_validator(anon_client):
    html = anon_client.get("/api/docs/").content.decode()
    assert '"validatorUrl": null' in html
