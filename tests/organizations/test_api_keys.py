from http import HTTPStatus

import pytest
from django.utils import timezone

from organizations.models import ApiKey
from organizations.selectors import api_key_authenticate
from organizations.services import api_key_create, api_key_mark_used, hash_api_key
from tests.api_errors import error_detail, error_fields, error_type

pytestmark = pytest.mark.django_db


def test_key_is_stored_only_hashed(organization):
    api_key, raw_key = api_key_create(organization=organization, name="ci")
    row = ApiKey.objects.get(pk=api_key.pk)
    assert row.hashed_key == hash_api_key(raw_key)
    assert raw_key not in {row.hashed_key, row.prefix, row.name}
    assert raw_key.startswith(f"ik_{row.prefix}_")


def test_valid_key_authenticates_and_records_use(api_client):
    response = api_client.get("/api/organization/")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["slug"] == "acme"
    assert response.json()["can_write"] is True
    api_client.api_key.refresh_from_db()
    assert api_client.api_key.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    ["Bearer ik_deadbeef_nope", "Bearer not-a-key", "Bearer", "Bearer a b", "Token abc"],
)
def test_unknown_or_malformed_key_is_401(anon_client, api_client, header):
    anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get("/api/organization/")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert error_type(response) == "authentication_failed" and error_detail(response)


def test_key_with_right_prefix_but_wrong_secret_is_401(anon_client, api_client):
    prefix = api_client.api_key.prefix
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer ik_{prefix}_wrongsecret")
    assert anon_client.get("/api/organization/").status_code == HTTPStatus.UNAUTHORIZED


def test_no_credentials_is_401_with_bearer_challenge(anon_client):
    response = anon_client.get("/api/api-keys/")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"


def test_revoked_key_is_401(api_client):
    api_client.delete(f"/api/api-keys/{api_client.api_key.pk}/")
    response = api_client.get("/api/organization/")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert api_key_authenticate(raw_key=api_client.raw_key) is None


def test_read_only_key_reads_but_cannot_write(read_only_client):
    assert read_only_client.get("/api/api-keys/").status_code == HTTPStatus.OK
    response = read_only_client.post("/api/api-keys/", {"name": "x"}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert ApiKey.objects.count() == 1
    response = read_only_client.delete(f"/api/api-keys/{read_only_client.api_key.pk}/")
    assert response.status_code == HTTPStatus.FORBIDDEN
    read_only_client.api_key.refresh_from_db()
    assert read_only_client.api_key.revoked_at is None


def test_create_returns_key_once_and_lists_never_show_it(api_client):
    response = api_client.post("/api/api-keys/", {"name": "deploy", "read_only": True}, format="json")
    assert response.status_code == HTTPStatus.CREATED
    raw_key = response.json()["key"]
    assert api_key_authenticate(raw_key=raw_key).read_only is True

    listing = api_client.get("/api/api-keys/")
    assert raw_key not in listing.content.decode()
    detail = api_client.get(f"/api/api-keys/{response.json()['id']}/")
    assert "key" not in detail.json()
    assert detail.json()["prefix"] == response.json()["prefix"]


def test_create_with_bad_body_is_400_with_field_errors(api_client):
    response = api_client.post("/api/api-keys/", {"name": "x" * 500}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "name" in error_fields(response)
    response = api_client.post("/api/api-keys/", "not json", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert ApiKey.objects.count() == 1


def test_last_used_is_written_at_most_once_a_minute(api_client, django_assert_num_queries):
    api_client.get("/api/organization/")
    # Second call within the minute: the key lookup only, no UPDATE.
    with django_assert_num_queries(1):
        api_client.get("/api/organization/")
    ApiKey.objects.filter(pk=api_client.api_key.pk).update(last_used_at=timezone.now() - timezone.timedelta(hours=1))
    with django_assert_num_queries(2):
        api_client.get("/api/organization/")


def test_last_used_update_is_conditional_across_stale_copies(api_client):
    """Two workers holding the same stale copy of a key: only the first writes."""
    stale = timezone.now() - timezone.timedelta(hours=1)
    ApiKey.objects.filter(pk=api_client.api_key.pk).update(last_used_at=stale)
    first, second = ApiKey.objects.get(pk=api_client.api_key.pk), ApiKey.objects.get(pk=api_client.api_key.pk)
    api_key_mark_used(api_key=first)
    written = ApiKey.objects.get(pk=first.pk).last_used_at
    assert written == first.last_used_at and written > stale
    api_key_mark_used(api_key=second)  # its copy says an hour ago; the row says now
    assert ApiKey.objects.get(pk=first.pk).last_used_at == written


def test_revocation_by_another_process_is_refused_on_the_next_request(api_client):
    """The key row is read on every request (nothing cached): a revocation written by any
    process (here a bare UPDATE, as another worker's would be) refuses the very next request."""
    assert api_client.get("/api/organization/").status_code == HTTPStatus.OK
    ApiKey.objects.filter(pk=api_client.api_key.pk).update(revoked_at=timezone.now())
    assert api_client.get("/api/organization/").status_code == HTTPStatus.UNAUTHORIZED


def test_authenticate_returns_the_key_and_its_organization_as_stored(api_client, django_assert_num_queries):
    with django_assert_num_queries(1):
        api_key = api_key_authenticate(raw_key=api_client.raw_key)
        organization = api_key.organization
    stored = ApiKey.objects.select_related("organization").get(pk=api_client.api_key.pk)
    for field in ApiKey._meta.concrete_fields:
        assert getattr(api_key, field.attname) == getattr(stored, field.attname), field.name
    for field in stored.organization._meta.concrete_fields:
        assert getattr(organization, field.attname) == getattr(stored.organization, field.attname), field.name
    assert not api_key._state.adding and api_key._state.db == "default"
    assert api_key_authenticate(raw_key=api_client.raw_key[:-1] + "x") is None  # a wrong secret
    assert api_key_authenticate(raw_key="ik_nosuchpre_" + "a" * 32) is None  # an unknown prefix
