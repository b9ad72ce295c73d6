"""Per provider: the base URL a relative path is joined to, and the credential's shape."""

from __future__ import annotations

import base64

import pytest
import responses
from responses import matchers

from integrations.client import integration_client

from .conftest import KEY, TOKEN, api_key, oauth

pytestmark = pytest.mark.django_db


def bearer(token):
    return [matchers.header_matcher({"Authorization": f"Bearer {token}"})]


def basic(user, password):
    value = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [matchers.header_matcher({"Authorization": f"Basic {value}"})]


OAUTH_CASES = [
    (
        "google_calendar",
        {},
        "users/me/calendarList/primary",
        "https://www.googleapis.com/calendar/v3/users/me/calendarList/primary",
    ),
    ("gmail", {}, "users/me/profile", "https://gmail.googleapis.com/gmail/v1/users/me/profile"),
    ("microsoft_outlook", {"tenant": "common"}, "me/events", "https://graph.microsoft.com/v1.0/me/events"),
    ("outlook_mail", {}, "me/messages", "https://graph.microsoft.com/v1.0/me/messages"),
    ("microsoft_teams", {}, "me/joinedTeams", "https://graph.microsoft.com/v1.0/me/joinedTeams"),
    ("slack", {}, "conversations.list", "https://slack.com/api/conversations.list"),
    ("linkedin", {}, "v2/userinfo", "https://api.linkedin.com/v2/userinfo"),
    ("indeed", {}, "graphql", "https://apis.indeed.com/graphql"),
    ("rippling", {"app_name": "acme"}, "platform/api/me", "https://api.rippling.com/platform/api/me"),
    ("hellosign", {}, "account", "https://api.hellosign.com/v3/account"),
    (
        "bamboohr",
        {"company_domain": "acme"},
        "employees/directory",
        "https://api.bamboohr.com/api/gateway.php/acme/v1/employees/directory",
    ),
]


@pytest.mark.parametrize(("provider", "config", "path", "url"), OAUTH_CASES)
def test_oauth_providers_send_the_bearer_token_to_their_base_url(organization, provider, config, path, url):
    integration = oauth(organization, provider, config=config)
    body = {"ok": True, "id": 1} if provider == "slack" else {"id": 1}
    with responses.RequestsMock() as mock:
        mock.get(url, json=body, match=bearer(TOKEN))
        assert integration_client(integration).get(path) == body


def test_leading_slash_is_relative_to_the_base(organization):
    with responses.RequestsMock() as mock:
        mock.get("https://www.googleapis.com/calendar/v3/users/me/calendarList", json={"items": []})
        assert integration_client(oauth(organization)).get("/users/me/calendarList") == {"items": []}


def test_rippling_api_key_is_a_bearer_token(organization):
    with responses.RequestsMock() as mock:
        mock.get("https://api.rippling.com/platform/api/me", json={"id": "me"}, match=bearer(KEY))
        assert integration_client(api_key(organization, "rippling")).get("platform/api/me") == {"id": "me"}


def test_bamboohr_api_key_is_the_basic_username_with_password_x_under_the_company_domain(organization):
    integration = api_key(organization, "bamboohr", config={"company_domain": "globex"})
    url = "https://api.bamboohr.com/api/gateway.php/globex/v1/employees/4"
    with responses.RequestsMock() as mock:
        mock.get(url, json={"id": "4"}, match=basic(KEY, "x"))
        assert integration_client(integration).get("employees/4") == {"id": "4"}


def test_hellosign_api_key_is_the_basic_username(organization):
    with responses.RequestsMock() as mock:
        mock.get("https://api.hellosign.com/v3/account", json={"account": {}}, match=basic(KEY, "x"))
        integration_client(api_key(organization, "hellosign")).get("account")


def test_workday_basic_username_password_and_tenant_in_the_path(organization):
    integration = api_key(
        organization,
        "workday",
        config={"tenant": "acme_corp", "api_domain": "wd2-impl-services1.workday.com"},
        credentials={"username": "isu@acme", "password": "sentinel-PASSWORD-1"},
    )
    url = "https://wd2-impl-services1.workday.com/ccx/api/staffing/v6/acme_corp/workers"
    with responses.RequestsMock() as mock:
        mock.get(url, json={"data": []}, match=basic("isu@acme", "sentinel-PASSWORD-1"))
        assert integration_client(integration).get("staffing/v6/{tenant}/workers") == {"data": []}


def test_workday_oauth_uses_the_api_domain(organization):
    config = {
        "tenant": "acme",
        "auth_domain": "impl.workday.com",
        "token_domain": "wd2-impl-services1.workday.com",
        "api_domain": "wd2-impl-services1.workday.com",
    }
    integration = oauth(organization, "workday", config=config)
    with responses.RequestsMock() as mock:
        mock.get(
            "https://wd2-impl-services1.workday.com/ccx/api/v1/acme/workers", json={"data": []}, match=bearer(TOKEN)
        )
        integration_client(integration).get("v1/{tenant}/workers")


def test_custom_api_base_url_from_config_with_an_api_token(organization):
    integration = api_key(
        organization,
        "custom",
        config={"api_base_url": "https://api.example.com/v2/", "category": "hris"},
        credentials={"token": KEY},
    )
    with responses.RequestsMock() as mock:
        mock.post("https://api.example.com/v2/things", json={"id": 7}, status=201, match=bearer(KEY))
        assert integration_client(integration).post("things", json={"name": "x"}) == {"id": 7}


def test_custom_without_api_base_url_is_a_clear_error(organization):
    integration = api_key(organization, "custom", config={"category": "hris"})
    with pytest.raises(Exception, match=r"config\.api_base_url is missing"):
        integration_client(integration).get("things")


def test_glassdoor_query_keys_are_refused(organization):
    integration = api_key(organization, "glassdoor", config={"partner_id": "1"})
    with pytest.raises(Exception, match="no API"):
        integration_client(integration).get("jobs")


def test_put_patch_delete_send_their_method_and_body(organization):
    client = integration_client(oauth(organization, "microsoft_outlook"))
    with responses.RequestsMock() as mock:
        mock.put(
            "https://graph.microsoft.com/v1.0/me/events/1",
            json={"id": "1"},
            match=[matchers.json_params_matcher({"a": 1})],
        )
        mock.patch(
            "https://graph.microsoft.com/v1.0/me/events/1",
            json={"id": "1"},
            match=[matchers.json_params_matcher({"b": 2})],
        )
        mock.delete("https://graph.microsoft.com/v1.0/me/events/1", status=204)
        assert client.put("me/events/1", json={"a": 1}) == {"id": "1"}
        assert client.patch("me/events/1", json={"b": 2}) == {"id": "1"}
        assert client.delete("me/events/1") is None


def test_params_are_sent_as_the_query(organization):
    with responses.RequestsMock() as mock:
        mock.get(
            "https://graph.microsoft.com/v1.0/me/events",
            json={"value": []},
            match=[matchers.query_param_matcher({"$top": "5", "$select": "subject"})],
        )
        integration_client(oauth(organization, "outlook_mail")).get(
            "me/events", params={"$top": 5, "$select": "subject"}
        )


@pytest.mark.parametrize(
    ("provider", "auth_type", "config", "path", "url"),
    [
        ("docusign", "jwt", {"client_id": "ik", "user_id": "u"}, None, None),
        (
            "workday",
            "saml",
            {"tenant": "acme", "api_domain": "wd2.workday.com"},
            "v1/{tenant}/workers",
            "https://wd2.workday.com/ccx/api/v1/acme/workers",
        ),
    ],
)
def test_minted_jwt_and_saml_tokens_are_sent_as_bearer(organization, provider, auth_type, config, path, url):
    integration = oauth(organization, provider, auth_type=auth_type, config=config, credentials={"access_token": TOKEN})
    with responses.RequestsMock() as mock:
        if provider == "docusign":
            accounts = {"accounts": [{"account_id": "a1", "is_default": True, "base_uri": "https://demo.docusign.net"}]}
            mock.get("https://account.docusign.com/oauth/userinfo", json=accounts, match=bearer(TOKEN))
            path, url = "v2.1/accounts/{account_id}", "https://demo.docusign.net/restapi/v2.1/accounts/a1"
        mock.get(url, json={"ok": 1}, match=bearer(TOKEN))
        assert integration_client(integration).get(path) == {"ok": 1}
