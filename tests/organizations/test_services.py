"""API-key writes from the admin against revocation and use through the API, run at the same time."""

from __future__ import annotations

import threading
import time
from http import HTTPStatus

import pytest

from organizations.models import ApiKey
from organizations.services import api_key_create, api_key_revoke, api_key_update
from tests.concurrency import Concurrently
from tests.conftest import KeyClient

pytestmark = pytest.mark.django_db(transaction=True)  # the transactional_db fixture: threads see commits


def test_an_admin_rename_never_undoes_a_revocation_or_a_recorded_use(organization, api_client, admin_client):
    """Red on PostgreSQL before the fix (a full save() of the admin's copy un-revoked the key);
    SQLite's IMMEDIATE admin transaction happens to serialize it."""
    for round_ in range(12):
        api_key, raw_key = api_key_create(organization=organization, name=f"ci {round_}")
        change_url = f"/admin/organizations/apikey/{api_key.pk}/change/"
        done = threading.Event()

        def rename(change_url=change_url, done=done, round_=round_):
            n = 0
            while not done.is_set() or n < 3:
                response = admin_client.post(change_url, {"name": f"ci {round_}.{n}"})
                assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
                n += 1

        def use_then_revoke(api_key=api_key, raw_key=raw_key, done=done, round_=round_):
            try:
                time.sleep(0.004 * (round_ % 4))  # land the writes at different points of a save
                assert KeyClient(raw_key, api_key).get("/api/organization/").status_code == HTTPStatus.OK
                assert api_client.delete(f"/api/api-keys/{api_key.pk}/").status_code == HTTPStatus.NO_CONTENT
            finally:
                done.set()

        with Concurrently(rename, use_then_revoke):
            pass
        api_key.refresh_from_db()
        assert api_key.name.startswith(f"ci {round_}.")
        assert api_key.revoked_at is not None, f"un-revoked by an admin rename in round {round_}"
        assert api_key.last_used_at is not None, f"use forgotten after an admin rename in round {round_}"
        assert KeyClient(raw_key, api_key).get("/api/organization/").status_code == HTTPStatus.UNAUTHORIZED


def test_revoking_twice_keeps_the_first_revocation_time(organization):
    api_key, _ = api_key_create(organization=organization, name="ci")
    first = api_key_revoke(api_key=api_key).revoked_at
    stale = ApiKey.objects.get(pk=api_key.pk)
    stale.revoked_at = None  # a copy read before the first revocation
    assert api_key_revoke(api_key=stale).revoked_at == first
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == first


def test_update_writes_only_the_given_fields(organization):
    api_key, _ = api_key_create(organization=organization, name="ci")
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at="2030-01-01T00:00:00Z")
    updated = api_key_update(api_key=api_key, name="deploy", read_only=True)  # `api_key` has no last_used_at
    row = ApiKey.objects.get(pk=api_key.pk)
    assert (row.name, row.read_only) == ("deploy", True)
    assert row.last_used_at is not None and updated.last_used_at == row.last_used_at
