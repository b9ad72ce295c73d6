from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=StringIO())
    text = out.read_text()
    assert "ApiKeyAuth" in text
    assert "scheme: bearer" in text


def test_schema_and_docs_are_served_without_auth(anon_client):
    assert anon_client.get("/api/schema/").status_code == HTTPStatus.OK
    assert anon_client.get("/api/schema").status_code == HTTPStatus.OK
    response = anon_client.get("/api/docs/")
    assert response.status_code == HTTPStatus.OK
    assert b"swagger" in response.content.lower()


def test_non_json_body_is_415(api_client):
    response = api_client.post("/api/api-keys/", "name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert "detail" in response.json()


def test_admin_login_page_loads(client):
    assert client.get("/admin/login/").status_code == HTTPStatus.OK


def test_setup_schedules_is_idempotent():
    from django_q.models import Schedule

    from common.schedules import registered_schedules

    call_command("setup_schedules", stdout=StringIO())
    first = Schedule.objects.count()
    call_command("setup_schedules", stdout=StringIO())
    assert Schedule.objects.count() == first == len(registered_schedules())
