"""Connection issues in the API: per integration, across the organization, and in the
integration's own representation (with its token lifecycle)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from integrations.models import ConnectionIssue, Integration
from tests.api_errors import error_fields, field_errors
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory

pytestmark = pytest.mark.django_db

LIST = "/api/integration-issues/"
FIELDS = {
    "id",
    "integration",
    "kind",
    "status",
    "message",
    "details",
    "count",
    "first_seen_at",
    "last_seen_at",
    "opened_at",
    "resolved_at",
}


def make_issue(integration, kind="credentials_rejected", status="open", *, age_minutes=0, **kwargs) -> ConnectionIssue:
    at = timezone.now() - timedelta(minutes=age_minutes)
    return ConnectionIssue.objects.create(
        organization=integration.organization,
        integration=integration,
        kind=kind,
        status=status,
        message=kwargs.pop("message", f"{kind} on {integration.name}"),
        count=kwargs.pop("count", 1),
        first_seen_at=at,
        last_seen_at=at,
        opened_at=None if status == "pending" else at,
        resolved_at=at if status == "resolved" else None,
        **kwargs,
    )


@pytest.fixture
def hr(organization):
    return IntegrationFactory(organization=organization, name="HR", provider="rippling")


@pytest.fixture
def calendar(organization):
    return OAuthIntegrationFactory(organization=organization, name="Calendar", status="active")


def ids(response) -> list[str]:
    assert response.status_code == HTTPStatus.OK, response.json()
    return [item["id"] for item in response.json()["results"]]


def test_an_integrations_issues_newest_first_with_their_representation(api_client, hr, calendar):
    old = make_issue(hr, "rate_limited", "resolved", age_minutes=60)
    new = make_issue(hr, "credentials_rejected", age_minutes=1, details={"http_status": 401}, count=4)
    make_issue(hr, "provider_unavailable", "pending")  # not an issue yet
    make_issue(calendar, "missing_scopes")
    response = api_client.get(f"/api/integrations/{hr.pk}/issues/")
    assert ids(response) == [str(new.pk), str(old.pk)]
    first = response.json()["results"][0]
    assert set(first) == FIELDS
    assert first["integration"] == {"id": str(hr.pk), "name": "HR", "provider": "rippling"}
    assert (first["kind"], first["status"], first["count"], first["details"]) == (
        "credentials_rejected",
        "open",
        4,
        {"http_status": 401},
    )
    assert first["resolved_at"] is None and first["opened_at"].endswith("Z")
    assert ids(api_client.get(f"/api/integrations/{hr.pk}/issues/?status=resolved")) == [str(old.pk)]
    assert ids(api_client.get(f"/api/integrations/{hr.pk}/issues?status=open")) == [str(new.pk)]


@pytest.mark.parametrize("query", ["status=pending", "status=closed", "status="])
def test_a_bad_status_is_a_400_and_an_empty_one_no_filter(api_client, hr, query):
    response = api_client.get(f"/api/integrations/{hr.pk}/issues/?{query}")
    if query == "status=":  # empty: no filter, as on every list
        assert response.status_code == HTTPStatus.OK
        return
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "status" in error_fields(response)


def test_the_organizations_issues_filtered_by_status_kind_and_provider(api_client, hr, calendar):
    open_hr = make_issue(hr, "credentials_rejected", age_minutes=3)
    resolved_hr = make_issue(hr, "rate_limited", "resolved", age_minutes=10)
    open_calendar = make_issue(calendar, "missing_scopes", age_minutes=1)
    make_issue(calendar, "provider_unavailable", "pending")
    assert ids(api_client.get(LIST)) == [str(open_calendar.pk), str(open_hr.pk), str(resolved_hr.pk)]
    assert ids(api_client.get(f"{LIST}?status=open")) == [str(open_calendar.pk), str(open_hr.pk)]
    assert ids(api_client.get(f"{LIST}?status=open&kind=credentials_rejected")) == [str(open_hr.pk)]
    assert ids(api_client.get(f"{LIST}?provider=google_calendar")) == [str(open_calendar.pk)]
    assert ids(api_client.get(f"{LIST}?integration={hr.pk}")) == [str(open_hr.pk), str(resolved_hr.pk)]
    assert ids(api_client.get("/api/integration-issues?page_size=1")) == [str(open_calendar.pk)]
    one = api_client.get(f"{LIST}{open_hr.pk}/")
    assert one.status_code == HTTPStatus.OK and one.json()["kind"] == "credentials_rejected"


@pytest.mark.parametrize(
    "query", ["status=pending", "kind=broken", "provider=myspace", "integration=not-a-uuid", "page_size=0"]
)
def test_invalid_filters_are_a_400_with_json(api_client, hr, query):
    response = api_client.get(f"{LIST}?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.headers["Content-Type"] == "application/json"
    assert query.split("=")[0] in error_fields(response)


def test_another_organizations_issues_are_never_seen(api_client, other_client, hr):
    mine = make_issue(hr)
    theirs_integration = IntegrationFactory(organization=other_client.organization, name="Theirs")
    theirs = make_issue(theirs_integration)
    assert ids(api_client.get(LIST)) == [str(mine.pk)]
    assert ids(other_client.get(LIST)) == [str(theirs.pk)]
    assert api_client.get(f"{LIST}{theirs.pk}/").status_code == HTTPStatus.NOT_FOUND
    assert api_client.get(f"/api/integrations/{theirs_integration.pk}/issues/").status_code == HTTPStatus.NOT_FOUND
    assert ids(api_client.get(f"{LIST}?integration={theirs_integration.pk}")) == []  # no existence leak
    listed = api_client.get("/api/integrations/").json()["results"]
    assert [i["open_issues"] for i in listed] == [{"count": 1, "kinds": ["credentials_rejected"]}]


def test_read_only_keys_read_issues_and_nobody_writes_them(read_only_client, api_client, hr):
    issue = make_issue(hr)
    assert ids(read_only_client.get(LIST)) == [str(issue.pk)]
    assert ids(read_only_client.get(f"/api/integrations/{hr.pk}/issues/")) == [str(issue.pk)]
    for method in ("post", "put", "patch", "delete"):
        response = getattr(api_client, method)(f"{LIST}{issue.pk}/", {}, format="json")
        assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert api_client.post(LIST, {}, format="json").status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_anonymous_requests_are_refused(anon_client, hr):
    make_issue(hr)
    assert anon_client.get(LIST).status_code == HTTPStatus.UNAUTHORIZED


def test_issue_lists_take_a_constant_number_of_queries(api_client, organization, django_assert_max_num_queries):
    integrations = [IntegrationFactory(organization=organization, name=f"i{n}") for n in range(30)]
    for integration in integrations:
        make_issue(integration)
        make_issue(integration, "rate_limited", "resolved", age_minutes=5)
    api_client.get(LIST)  # warm the key's last_used_at
    with django_assert_max_num_queries(3):  # key, count, page (with its integrations)
        assert len(ids(api_client.get(f"{LIST}?page_size=100"))) == 60
    with django_assert_max_num_queries(3):
        assert len(ids(api_client.get(f"{LIST}?page_size=2"))) == 2
    with django_assert_max_num_queries(4):  # key, the integration, count, page
        assert len(ids(api_client.get(f"/api/integrations/{integrations[0].pk}/issues/"))) == 2


def test_the_integration_shows_open_issues_and_its_token_lifecycle(api_client, organization, calendar):
    expires = timezone.now() + timedelta(hours=1)
    refreshed = timezone.now() - timedelta(minutes=5)
    Integration.objects.filter(pk=calendar.pk).update(
        token_expires_at=expires,
        token_refresh_attempts=7,
        token_refresh_failures=2,
        refresh_failure_count=1,
        last_token_refresh_at=refreshed,
        granted_scopes=["https://www.googleapis.com/auth/calendar.readonly"],
    )
    make_issue(calendar, "missing_scopes")
    make_issue(calendar, "rate_limited")
    make_issue(calendar, "provider_unavailable", "pending")
    make_issue(calendar, "credentials_rejected", "resolved")
    body = api_client.get(f"/api/integrations/{calendar.pk}/").json()
    assert body["open_issues"] == {"count": 2, "kinds": ["missing_scopes", "rate_limited"]}
    assert (body["token_refresh_attempts"], body["token_refresh_failures"], body["refresh_failure_count"]) == (7, 2, 1)
    assert body["last_token_refresh_at"] == refreshed.isoformat().replace("+00:00", "Z")
    assert body["token_expires_at"] == expires.isoformat().replace("+00:00", "Z")
    # next refresh: the expiry less the refresh margin (INTEGRATIONS_TOKEN_REFRESH_MARGIN, 300 s)
    assert body["next_token_refresh_at"] == (expires - timedelta(seconds=300)).isoformat().replace("+00:00", "Z")
    assert body["granted_scopes"] == ["https://www.googleapis.com/auth/calendar.readonly"]
    # an API-key integration has no token to refresh
    hr = IntegrationFactory(organization=organization, name="HR")
    assert api_client.get(f"/api/integrations/{hr.pk}/").json()["next_token_refresh_at"] is None


def test_lifecycle_fields_are_read_only(api_client, hr):
    response = api_client.patch(
        f"/api/integrations/{hr.pk}/", {"token_refresh_attempts": 99, "granted_scopes": ["admin"]}, format="json"
    )
    # refused, naming the fields (the strict API), and nothing is stored
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field_errors(response) == {
        "token_refresh_attempts": ["This field is read-only."],
        "granted_scopes": ["This field is read-only."],
    }
    hr.refresh_from_db()
    assert (hr.token_refresh_attempts, hr.granted_scopes) == (0, [])


def test_the_list_shows_open_issues_without_a_query_per_integration(
    api_client, organization, django_assert_max_num_queries
):
    for n in range(20):
        make_issue(IntegrationFactory(organization=organization, name=f"i{n}"))
    api_client.get("/api/integrations/")
    with django_assert_max_num_queries(4):  # key, count, page, the page's open issues
        results = api_client.get("/api/integrations/?page_size=100").json()["results"]
    assert {r["open_issues"]["count"] for r in results} == {1}


def test_the_schema_documents_the_issue_endpoints(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {"/api/integration-issues/", "/api/integration-issues/{id}/", "/api/integrations/{id}/issues/"} <= set(
        schema["paths"]
    )
    listing = schema["paths"]["/api/integration-issues/"]["get"]
    assert {"status", "kind", "provider", "integration", "page", "page_size"} <= {
        p["name"] for p in listing["parameters"]
    }
    per_integration = schema["paths"]["/api/integrations/{id}/issues/"]["get"]
    assert "status" in {p["name"] for p in per_integration["parameters"]}
    integration = schema["components"]["schemas"]["Integration"]["properties"]
    assert {"open_issues", "token_refresh_attempts", "next_token_refresh_at", "granted_scopes"} <= set(integration)
