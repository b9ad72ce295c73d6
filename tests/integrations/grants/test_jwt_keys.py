"""integrations/grants/jwt_keys.py: keys, algorithms and the catalogue's JWT entries."""

import json

import pytest

from integrations import providers
from integrations.grants.jwt_keys import (
    KeyProblem,
    algorithm_for,
    key_secrets,
    load_private_key,
    parse_service_account,
    token_endpoint_refusal,
)
from tests.integrations.grants.keys import SA_CLIENT_ID, ec_pem, rsa_pem, service_account, service_account_text

JWT_PROVIDERS = [p for p in providers.provider_list() if providers.JWT in p.auth_types]


@pytest.mark.parametrize("provider", JWT_PROVIDERS, ids=lambda provider: provider.name)
def test_every_jwt_provider_describes_its_grant(provider):
    assert provider.jwt is not None
    if provider.jwt.key == "private_key":
        assert provider.jwt.token_url and provider.jwt.issuer


@pytest.mark.parametrize("provider", [p for p in JWT_PROVIDERS if p.own_hosts], ids=lambda provider: provider.name)
def test_catalogue_token_endpoints_are_on_the_providers_own_hosts(provider):
    config = {spec.name: spec.default for spec in provider.all_config_fields() if isinstance(spec.default, str)}
    url = provider.jwt.token_url.format_map(config) if provider.jwt.token_url else "https://oauth2.googleapis.com/token"
    assert token_endpoint_refusal(provider, url, allow_private=True) is None
    assert token_endpoint_refusal(provider, "https://evil.example/token", allow_private=True)
    assert token_endpoint_refusal(provider, url.replace("https://", "http://"), allow_private=True)


def test_custom_token_url_needs_https_unless_private_urls_are_allowed():
    custom = providers.get_provider("custom")
    assert token_endpoint_refusal(custom, "http://127.0.0.1:8080/token", allow_private=False)
    assert token_endpoint_refusal(custom, "http://127.0.0.1:8080/token", allow_private=True) is None
    assert token_endpoint_refusal(custom, "https://auth.example.com/token", allow_private=False) is None


@pytest.mark.parametrize(("requested", "expected"), [(None, "RS256"), ("RS512", "RS512"), ("PS256", "PS256")])
def test_rsa_algorithms(requested, expected):
    assert algorithm_for(load_private_key(rsa_pem()), requested) == expected


def test_ec_key_signs_with_its_curves_algorithm_only():
    key = load_private_key(ec_pem())
    assert algorithm_for(key) == "ES256"
    with pytest.raises(KeyProblem, match="ES256"):
        algorithm_for(key, "ES384")


def test_service_account_keeps_its_private_key_out_of_repr():
    account = parse_service_account(service_account_text())
    assert account.client_id == SA_CLIENT_ID
    assert rsa_pem("google") not in repr(account)
    assert rsa_pem("google").splitlines()[1] not in repr(account)


def test_key_secrets_cover_the_key_inside_a_service_account_and_each_pem_line():
    found = key_secrets({"service_account": json.dumps(service_account())})
    assert rsa_pem("google") in found
    assert set(rsa_pem("google").splitlines()[1:-1]) <= set(found)
    assert key_secrets({"private_key": "not a key", "service_account": "{not json"}) == ["not a key"]
