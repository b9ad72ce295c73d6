"""DocuSign: the REST base is the account's base_uri from userinfo, kept in memory."""

from __future__ import annotations

import pytest
import responses
from responses import matchers

from integrations.client import ProviderError, integration_client

from .conftest import TOKEN, oauth

pytestmark = pytest.mark.django_db

USERINFO = "https://account-d.docusign.com/oauth/userinfo"
ACCOUNTS = {
    "sub": "user-1",
    "accounts": [
        {"account_id": "acc-other", "is_default": False, "base_uri": "https://eu.docusign.net"},
        {"account_id": "acc-default", "is_default": True, "base_uri": "https://na3.docusign.net"},
    ],
}


def docusign(organization, **config):
    return oauth(organization, "docusign", config={"account_domain": "account-d.docusign.com", **config})


def test_default_account_base_uri_plus_restapi_and_account_id_in_paths(organization):
    client = integration_client(docusign(organization))
    with responses.RequestsMock() as mock:
        mock.get(USERINFO, json=ACCOUNTS, match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})])
        mock.get("https://na3.docusign.net/restapi/v2.1/accounts/acc-default/envelopes", json={"envelopes": []})
        assert client.base_url == "https://na3.docusign.net/restapi"
        assert client.get("v2.1/accounts/{account_id}/envelopes") == {"envelopes": []}


def test_config_account_id_selects_the_account(organization):
    client = integration_client(docusign(organization, account_id="acc-other"))
    with responses.RequestsMock() as mock:
        mock.get(USERINFO, json=ACCOUNTS)
        assert client.base_url == "https://eu.docusign.net/restapi"


def test_userinfo_is_cached_per_integration(organization):
    integration = docusign(organization)
    with responses.RequestsMock() as mock:
        userinfo = mock.get(USERINFO, json=ACCOUNTS)
        mock.get("https://na3.docusign.net/restapi/v2.1/accounts/acc-default", json={})
        for _ in range(3):
            integration_client(integration).get("v2.1/accounts/{account_id}")
    assert userinfo.call_count == 1


def test_cache_expires_after_the_ttl(organization, settings):
    settings.INTEGRATIONS_CLIENT_BASE_URL_TTL = 0
    integration = docusign(organization)
    with responses.RequestsMock() as mock:
        userinfo = mock.get(USERINFO, json=ACCOUNTS)
        integration_client(integration).base_url
        integration_client(integration).base_url
    assert userinfo.call_count == 2


@pytest.mark.parametrize(
    "base_uri",
    [
        "https://evil.example.com",
        "http://na3.docusign.net",
        "https://na3.docusign.net:8443",
        "https://docusign.net.evil.io",
    ],
)
def test_a_base_uri_off_docusign_hosts_is_refused(organization, base_uri):
    accounts = {"accounts": [{"account_id": "a", "is_default": True, "base_uri": base_uri}]}
    with responses.RequestsMock() as mock:
        mock.get(USERINFO, json=accounts)
        with pytest.raises(ProviderError, match="refused"):
            integration_client(docusign(organization)).base_url


def test_unknown_account_id_is_a_clear_error(organization):
    with responses.RequestsMock() as mock:
        mock.get(USERINFO, json=ACCOUNTS)
        with pytest.raises(Exception, match="no account 'nope'"):
            integration_client(docusign(organization, account_id="nope")).base_url
