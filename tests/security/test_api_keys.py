"""API keys: constant-time comparison on every path, revoked keys, read-only keys."""

from __future__ import annotations

import hmac
from http import HTTPStatus
from unittest import mock

import pytest
import responses
from rest_framework.test import APIClient

from organizations import selectors
from organizations.models import ApiKey
from organizations.services import api_key_create, hash_api_key

from .tenants import (
    PARAMETER,
    expected_read_status,
    fill,
    make_tenant,
    mock_provider_apis,
    parameter_value,
    schema_operations,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def spy():
    with mock.patch.object(selectors.hmac, "compare_digest", wraps=hmac.compare_digest) as wrapped:
        yield wrapped


def _get(raw_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client.get("/api/organization/")


def test_a_valid_key_is_compared_in_constant_time_with_the_stored_hash(organization, spy):
    api_key, raw_key = api_key_create(organization=organization, name="k")
    assert _get(raw_key).status_code == HTTPStatus.OK
    spy.assert_called_once_with(hash_api_key(raw_key), api_key.hashed_key)


def test_a_wrong_secret_for_a_known_prefix_is_compared_too(organization, spy):
    api_key, _ = api_key_create(organization=organization, name="k")
    forged = f"ik_{api_key.prefix}_{'A' * 43}"
    assert _get(forged).status_code == HTTPStatus.UNAUTHORIZED
    spy.assert_called_once_with(hash_api_key(forged), api_key.hashed_key)


def test_an_unknown_prefix_still_compares_against_a_dummy_hash(organization, spy):
    """No early return: an unknown prefix costs the same comparison as a known one."""
    api_key_create(organization=organization, name="k")
    forged = "ik_0badc0de_" + "A" * 43
    assert _get(forged).status_code == HTTPStatus.UNAUTHORIZED
    spy.assert_called_once()
    candidate, stored = spy.call_args.args
    assert candidate == hash_api_key(forged)
    assert len(stored) == len(candidate) == 64


def test_a_revoked_key_is_compared_then_refused(organization, spy):
    api_key, raw_key = api_key_create(organization=organization, name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.delete(f"/api/api-keys/{api_key.pk}/").status_code == HTTPStatus.NO_CONTENT
    spy.reset_mock()
    response = _get(raw_key)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response["WWW-Authenticate"] == "Bearer"
    spy.assert_called_once_with(hash_api_key(raw_key), api_key.hashed_key)


def test_the_stored_hash_is_never_the_key(organization):
    api_key, raw_key = api_key_create(organization=organization, name="k")
    row = ApiKey.objects.values().get(pk=api_key.pk)
    assert raw_key not in repr(row)
    assert raw_key.split("_", 2)[2] not in repr(row)


def test_a_revoked_key_is_refused_on_every_route():
    tenant = make_tenant("acme")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenant.raw_key}")
    ApiKey.objects.filter(pk=tenant.api_key.pk).update(revoked_at="2000-01-01T00:00:00Z")
    for method, template, _ in schema_operations(APIClient()):
        values = {name: parameter_value(template, name, tenant) for name in PARAMETER.findall(template)}
        response = client.generic(method, fill(template, values), "{}", content_type="application/json")
        assert response.status_code == HTTPStatus.UNAUTHORIZED, (method, template)


def test_a_read_only_key_reads_everything_and_writes_nothing():
    tenant = make_tenant("acme")
    read_only, raw = api_key_create(organization=tenant.organization, name="ro", read_only=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    from .test_tenant_isolation import snapshot

    before = snapshot(tenant)
    writes = 0
    for method, template, _ in schema_operations(APIClient()):
        values = {name: parameter_value(template, name, tenant) for name in PARAMETER.findall(template)}
        url = fill(template, values)
        if method == "GET" and not template.endswith("/oauth/authorize/"):
            with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
                mock_provider_apis(outbound)  # the proxy's GET reaches the provider
                assert client.get(url).status_code == expected_read_status(template), url
            continue
        # writes, and starting an OAuth flow (a GET that ends in writing tokens)
        response = client.generic(method, url, '{"name": "x"}', content_type="application/json")
        assert response.status_code == HTTPStatus.FORBIDDEN, (method, template)
        writes += 1
    assert writes >= 15
    assert snapshot(tenant) == before
    read_only.refresh_from_db()
    assert read_only.revoked_at is None
