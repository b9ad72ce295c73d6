from http import HTTPStatus

import pytest

from organizations.models import ApiKey
from organizations.selectors import api_key_authenticate
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/organizations/organization/",
        "/admin/organizations/organization/?q=acme",
        "/admin/organizations/organization/add/",
        "/admin/organizations/membership/",
        "/admin/organizations/membership/?q=x",
        "/admin/organizations/membership/add/",
        "/admin/organizations/apikey/",
        "/admin/organizations/apikey/?q=x",
        "/admin/organizations/apikey/add/",
    ],
)
def test_admin_pages_load(admin_client, url, organization, api_client):
    MembershipFactory(organization=organization)
    assert admin_client.get(url).status_code == HTTPStatus.OK


def test_admin_change_pages_load_and_hide_the_hash(admin_client, organization, api_client):
    membership = MembershipFactory(organization=organization)
    api_key = api_client.api_key
    for url in [
        f"/admin/organizations/organization/{organization.pk}/change/",
        f"/admin/organizations/membership/{membership.pk}/change/",
        f"/admin/organizations/apikey/{api_key.pk}/change/",
    ]:
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK
        assert api_key.hashed_key not in response.content.decode()


def test_admin_creating_a_key_shows_it_once(admin_client, organization):
    response = admin_client.post(
        "/admin/organizations/apikey/add/",
        {"organization": organization.pk, "name": "from admin", "read_only": "on"},
        follow=True,
    )
    assert response.status_code == HTTPStatus.OK
    api_key = ApiKey.objects.get(name="from admin")
    messages = [str(m) for m in response.context["messages"]]
    raw_key = next(word for m in messages for word in m.split() if word.startswith("ik_"))
    assert api_key_authenticate(raw_key=raw_key) == api_key
    # Never again: the change page and the list do not show it.
    for url in ["/admin/organizations/apikey/", f"/admin/organizations/apikey/{api_key.pk}/change/"]:
        assert raw_key not in admin_client.get(url).content.decode()


def test_admin_revoke_action(admin_client, api_client):
    response = admin_client.post(
        "/admin/organizations/apikey/",
        {"action": "revoke", "_selected_action": [str(api_client.api_key.pk)]},
        follow=True,
    )
    api_client.api_key.refresh_from_db()
    assert api_client.api_key.revoked_at is not None
    assert [str(m) for m in response.context["messages"]] == ["Revoked 1 API key."]
