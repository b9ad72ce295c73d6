"""integrations/providers: every catalogue entry's typed fields hold values callers act on."""

from pathlib import Path
from typing import get_args

import pytest

from integrations import providers


@pytest.mark.parametrize("provider", providers.provider_list(), ids=lambda provider: provider.name)
def test_catalogue_entry_uses_only_known_values(provider):
    assert provider.health_check.auth in get_args(providers.HealthCheckAuth)
    assert provider.health_check.success in get_args(providers.HealthCheckSuccess)
    assert provider.token_auth_method in get_args(providers.TokenAuthMethod)
    assert set(provider.auth_types) <= set(providers.AUTH_TYPES)
    assert provider.category in providers.CATEGORIES


def test_api_key_credentials_sent_as_basic_are_the_ones_required():
    """An entry whose check sends username/password requires them for API-key integrations."""
    for provider in providers.provider_list():
        if provider.health_check.auth == "basic" and providers.API_KEY in provider.auth_types:
            assert set(provider.api_key_credentials) >= {"username", "password"}, provider.name


def test_providers_without_a_shared_app_have_no_environment_prefix():
    shared = {provider.name for provider in providers.provider_list() if provider.has_shared_oauth_app}
    assert "custom" not in shared
    assert {"google_calendar", "slack", "workday"} <= shared


def test_docs_providers_says_what_an_admin_supplies_for_every_provider_and_auth_type():
    """docs/PROVIDERS.md has a section per (provider, auth type) of the catalogue: a heading
    naming both, e.g. "### Slack (`slack`, `oauth2`)"."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "PROVIDERS.md").read_text()
    headings = [line for line in docs.splitlines() if line.startswith("### ")]
    missing = [
        (provider.name, auth_type)
        for provider in providers.provider_list()
        for auth_type in provider.auth_types
        if not any(f"`{provider.name}`" in heading and f"`{auth_type}`" in heading for heading in headings)
    ]
    assert missing == []
