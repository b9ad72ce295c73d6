"""The shared scoping helper: another organization's object is a 404 and never listed."""

from http import HTTPStatus

import pytest

from organizations.models import Membership
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_other_organizations_key_is_404_on_every_method(api_client, other_client):
    theirs = other_client.api_key.pk
    assert api_client.get(f"/api/api-keys/{theirs}/").status_code == HTTPStatus.NOT_FOUND
    assert api_client.delete(f"/api/api-keys/{theirs}/").status_code == HTTPStatus.NOT_FOUND
    other_client.api_key.refresh_from_db()
    assert other_client.api_key.revoked_at is None


def test_list_and_count_only_show_own_objects(api_client, other_client):
    body = api_client.get("/api/api-keys/").json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [str(api_client.api_key.pk)]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-000000000000"])
def test_malformed_or_unknown_id_is_404(api_client, bad_id):
    assert api_client.get(f"/api/api-keys/{bad_id}/").status_code == HTTPStatus.NOT_FOUND


def test_trailing_slash_is_optional(api_client):
    assert api_client.get("/api/api-keys").status_code == HTTPStatus.OK
    assert api_client.get("/api/api-keys/").status_code == HTTPStatus.OK
    assert api_client.get(f"/api/api-keys/{api_client.api_key.pk}").status_code == HTTPStatus.OK
    assert api_client.get("/api/organization").status_code == HTTPStatus.OK


def test_pagination_page_size(api_client):
    for index in range(4):
        api_client.post("/api/api-keys/", {"name": f"k{index}"}, format="json")
    body = api_client.get("/api/api-keys/?page_size=2&page=2").json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["previous"] is not None


def test_list_query_count_is_constant(api_client, django_assert_max_num_queries):
    for index in range(30):
        api_client.post("/api/api-keys/", {"name": f"k{index}"}, format="json")
    with django_assert_max_num_queries(3):
        api_client.get("/api/api-keys/?page_size=100")


# --- sessions with X-Organization ------------------------------------------------------


@pytest.fixture
def session_user(client):
    user = UserFactory()
    client.force_login(user)
    return user


def test_session_member_of_one_organization_needs_no_header(client, session_user):
    MembershipFactory(user=session_user, organization=OrganizationFactory(slug="solo"))
    response = client.get("/api/organization/")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["slug"] == "solo"


def test_session_with_several_memberships_picks_with_header(client, session_user):
    MembershipFactory(user=session_user, organization=OrganizationFactory(slug="one"))
    MembershipFactory(user=session_user, organization=OrganizationFactory(slug="two"), role=Membership.Role.VIEWER)
    assert client.get("/api/organization/").status_code == HTTPStatus.FORBIDDEN
    response = client.get("/api/organization/", headers={"X-Organization": "two"})
    assert response.json()["slug"] == "two"
    assert response.json()["can_write"] is False


def test_session_not_member_of_header_organization_is_403(client, session_user):
    MembershipFactory(user=session_user, organization=OrganizationFactory(slug="mine"))
    OrganizationFactory(slug="theirs")
    response = client.get("/api/organization/", headers={"X-Organization": "theirs"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    response = client.get("/api/organization/", headers={"X-Organization": "does-not-exist"})
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_session_without_membership_is_403(client, session_user):
    assert client.get("/api/organization/").status_code == HTTPStatus.FORBIDDEN


def test_session_scoping_hides_other_organizations_objects(client, session_user, other_client):
    MembershipFactory(user=session_user, organization=OrganizationFactory(slug="mine"))
    assert client.get("/api/api-keys/").json()["count"] == 0
    response = client.get(f"/api/api-keys/{other_client.api_key.pk}/")
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_viewer_cannot_write_admin_can(session_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(session_user)
    org = OrganizationFactory(slug="team")
    membership = MembershipFactory(user=session_user, organization=org, role=Membership.Role.VIEWER)
    assert client.post("/api/api-keys/", {"name": "x"}, format="json").status_code == HTTPStatus.FORBIDDEN
    membership.role = Membership.Role.ADMIN
    membership.save()
    assert client.post("/api/api-keys/", {"name": "x"}, format="json").status_code == HTTPStatus.CREATED
