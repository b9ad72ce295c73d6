from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command

from tests.api_errors import error_detail, error_fields, error_type, problem

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
    assert error_type(response) == "unsupported_media_type" and error_detail(response)


def test_admin_login_page_loads(client):
    assert client.get("/admin/login/").status_code == HTTPStatus.OK


def test_setup_schedules_is_idempotent():
    from django_q.models import Schedule

    from common.schedules import registered_schedules

    call_command("setup_schedules", stdout=StringIO())
    first = Schedule.objects.count()
    call_command("setup_schedules", stdout=StringIO())
    assert Schedule.objects.count() == first == len(registered_schedules())


def test_setup_schedules_says_what_changed(settings):
    from django_q.models import Schedule

    from common.schedules import registered_schedules

    def setup(*args):
        out = StringIO()
        call_command("setup_schedules", *args, stdout=out)
        return out.getvalue()

    total = len(registered_schedules())
    first = setup()
    assert first.count("created: ") == total and f"Schedules: {total} created." in first
    assert setup() == f"Schedules unchanged ({total} schedules up to date).\n"

    next_run = Schedule.objects.get(name="health.run_checks").next_run
    settings.HEALTH_CHECK_INTERVAL_MINUTES = 7
    changed = setup()
    assert "updated: health.run_checks (health.tasks.run_checks, every 7 min)" in changed
    assert f"Schedules: 1 updated, {total - 1} unchanged." in changed
    assert "created" not in changed and "webhooks.sweep" not in changed  # unchanged ones are not listed
    schedule = Schedule.objects.get(name="health.run_checks")
    assert schedule.minutes == 7 and schedule.next_run == next_run  # only what differs is written
    assert setup("-v", "2").count("unchanged: ") == total


# --- found by the API fuzzing suite (tests/security/test_api_fuzz.py) -------------------


@pytest.mark.parametrize(
    "path",
    ["/api/api-keys/not a uuid/", "/api/integrations/%C2%84/", "/api/integrations/webhooks/x;y/stats/", "/api/nope"],
)
def test_unrouted_api_paths_are_json_404s(api_client, path):
    """A path no route matches (e.g. a malformed id) answered Django's HTML 404 page."""
    response = api_client.get(path)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"] == "application/json"
    assert problem(response) == {"type": "not_found", "title": "Not found", "detail": "Not found.", "errors": {}}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_to_unrouted_api_paths_are_404s_not_csrf_refusals(method):
    """An API key client writing to a path that does not exist (a typo, an endpoint of a
    newer version) was told 403 "CSRF cookie not set", which sends it looking in the wrong place."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)("/api/events/nothing/", data="{}", content_type="application/json")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert problem(response)["type"] == "not_found"


def test_non_api_paths_keep_djangos_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"].startswith("text/html")


def test_api_500_is_json_without_traceback(rf):
    from common.api.handlers import server_error

    response = server_error(rf.get("/api/integrations/"))
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert response["Content-Type"] == "application/json"
    assert b"Traceback" not in response.content


@pytest.mark.parametrize("page_size", ["0", "-3", "abc", "null", "1.5"])
def test_bad_page_size_is_400(api_client, page_size):
    """`?page_size=abc` silently answered the default page size; now a clear 400."""
    response = api_client.get(f"/api/api-keys/?page_size={page_size}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "page_size" in error_fields(response)


def test_large_page_size_is_capped_not_refused(api_client):
    response = api_client.get("/api/api-keys/?page_size=100000")
    assert response.status_code == HTTPStatus.OK


def _schema(anon_client):
    return anon_client.get("/api/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def test_every_operation_documents_its_error_responses(anon_client):
    """The schema described only 2xx answers: every 400/401/403/404/415 was undocumented."""
    schema = _schema(anon_client)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "415"} <= codes, (method, path)
            for code in codes - {"204"}:
                assert "application/json" in operation["responses"][code]["content"], (method, path, code)


@pytest.mark.parametrize(
    ("path", "method", "code"),
    [
        ("/api/integrations/{id}/oauth/callback/", "post", "502"),
        ("/api/integrations/{id}/oauth/refresh/", "post", "502"),
        ("/api/integrations/{id}/oauth/refresh/", "post", "400"),
        ("/api/integrations/{id}/oauth/authorize/", "get", "400"),
        ("/api/integrations/webhooks/{id}/recover/", "post", "409"),
        ("/api/integrations/webhooks/{id}/logs/{log_id}/replay/", "post", "409"),
        ("/api/integrations/webhooks/{id}/test/", "post", "409"),
        ("/api/integrations/webhooks/{id}/logs/", "get", "400"),
        ("/api/api-keys/", "get", "400"),
    ],
)
def test_operation_specific_errors_are_documented(anon_client, path, method, code):
    assert code in _schema(anon_client)["paths"][path][method]["responses"]
