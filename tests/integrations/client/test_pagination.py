"""`paginate` in each provider's style yields every item, and follows links only on the base's host."""

from __future__ import annotations

import pytest
import responses
from responses import matchers

from integrations.client import ProviderError, integration_client

from .conftest import api_key, oauth

pytestmark = pytest.mark.django_db

GOOGLE = "https://www.googleapis.com/calendar/v3/calendars/primary/events"
GRAPH = "https://graph.microsoft.com/v1.0/me/messages"


def test_google_page_token(organization):
    with responses.RequestsMock() as mock:
        mock.get(
            GOOGLE,
            json={"items": [1, 2], "nextPageToken": "t2"},
            match=[matchers.query_param_matcher({"maxResults": "2"})],
        )
        mock.get(
            GOOGLE,
            json={"items": [3], "nextPageToken": "t3"},
            match=[matchers.query_param_matcher({"maxResults": "2", "pageToken": "t2"})],
        )
        mock.get(
            GOOGLE, json={"items": [4]}, match=[matchers.query_param_matcher({"maxResults": "2", "pageToken": "t3"})]
        )
        items = list(
            integration_client(oauth(organization)).paginate("calendars/primary/events", params={"maxResults": 2})
        )
    assert items == [1, 2, 3, 4]


def test_gmail_default_items_key_is_messages(organization):
    url = "https://gmail.googleapis.com/gmail/v1/users/me/messages"
    with responses.RequestsMock() as mock:
        mock.get(url, json={"messages": [{"id": "a"}], "nextPageToken": "n"}, match=[matchers.query_param_matcher({})])
        mock.get(url, json={"messages": [{"id": "b"}]}, match=[matchers.query_param_matcher({"pageToken": "n"})])
        assert [m["id"] for m in integration_client(oauth(organization, "gmail")).paginate("users/me/messages")] == [
            "a",
            "b",
        ]


def test_graph_odata_next_link(organization):
    with responses.RequestsMock() as mock:
        mock.get(
            GRAPH, json={"value": [1], "@odata.nextLink": GRAPH + "?$skip=1"}, match=[matchers.query_param_matcher({})]
        )
        mock.get(GRAPH, json={"value": [2]}, match=[matchers.query_param_matcher({"$skip": "1"})])
        assert list(integration_client(oauth(organization, "outlook_mail")).paginate("me/messages")) == [1, 2]


def test_graph_next_link_to_another_host_is_not_followed(organization):
    with responses.RequestsMock() as mock:
        mock.get(GRAPH, json={"value": [1], "@odata.nextLink": "https://evil.example.com/v1.0/me/messages?$skip=1"})
        pages = integration_client(oauth(organization, "outlook_mail")).paginate("me/messages")
        assert next(pages) == 1
        with pytest.raises(ProviderError, match="another host"):
            next(pages)


def test_slack_cursor_with_items_key(organization):
    url = "https://slack.com/api/conversations.list"
    with responses.RequestsMock() as mock:
        mock.get(
            url,
            json={"ok": True, "channels": [{"id": "C1"}], "response_metadata": {"next_cursor": "dXNlcjpV"}},
            match=[matchers.query_param_matcher({"limit": "1"})],
        )
        mock.get(
            url,
            json={"ok": True, "channels": [{"id": "C2"}], "response_metadata": {"next_cursor": ""}},
            match=[matchers.query_param_matcher({"limit": "1", "cursor": "dXNlcjpV"})],
        )
        channels = integration_client(oauth(organization, "slack")).paginate(
            "conversations.list", params={"limit": 1}, items_key="channels"
        )
        assert [c["id"] for c in channels] == ["C1", "C2"]


def test_slack_without_items_key_asks_for_one(organization):
    with pytest.raises(ValueError, match="items_key"):
        next(integration_client(oauth(organization, "slack")).paginate("conversations.list"))


def test_pages_true_yields_whole_pages(organization):
    url = "https://slack.com/api/users.list"
    with responses.RequestsMock() as mock:
        mock.get(url, json={"ok": True, "members": [1], "response_metadata": {"next_cursor": "c"}})
        mock.get(url, json={"ok": True, "members": [2]})
        pages = list(integration_client(oauth(organization, "slack")).paginate("users.list", pages=True))
    assert [page["members"] for page in pages] == [[1], [2]]


def test_docusign_relative_next_uri(organization):
    from .test_docusign import ACCOUNTS, USERINFO, docusign

    base = "https://na3.docusign.net/restapi/v2.1/accounts/acc-default/envelopes"
    with responses.RequestsMock() as mock:
        mock.get(USERINFO, json=ACCOUNTS)
        mock.get(
            base,
            json={"envelopes": [1], "nextUri": "/v2.1/accounts/acc-default/envelopes?start_position=1"},
            match=[matchers.query_param_matcher({"from_date": "2026-01-01"})],
        )
        mock.get(base, json={"envelopes": [2]}, match=[matchers.query_param_matcher({"start_position": "1"})])
        client = integration_client(docusign(organization))
        items = client.paginate(
            "v2.1/accounts/{account_id}/envelopes", params={"from_date": "2026-01-01"}, items_key="envelopes"
        )
        assert list(items) == [1, 2]


def test_workday_offset_until_total(organization):
    integration = api_key(
        organization,
        "workday",
        config={"tenant": "acme", "api_domain": "wd2.workday.com"},
        credentials={"username": "u", "password": "p-secret"},
    )
    url = "https://wd2.workday.com/ccx/api/v1/acme/workers"
    with responses.RequestsMock() as mock:
        mock.get(url, json={"total": 3, "data": [1, 2]}, match=[matchers.query_param_matcher({"limit": "2"})])
        mock.get(
            url, json={"total": 3, "data": [3]}, match=[matchers.query_param_matcher({"limit": "2", "offset": "2"})]
        )
        assert list(integration_client(integration).paginate("v1/{tenant}/workers", params={"limit": 2})) == [1, 2, 3]


def test_linkedin_start_count(organization):
    url = "https://api.linkedin.com/v2/jobs"
    with responses.RequestsMock() as mock:
        mock.get(
            url, json={"elements": [1], "paging": {"total": 2}}, match=[matchers.query_param_matcher({"count": "1"})]
        )
        mock.get(
            url,
            json={"elements": [2], "paging": {"total": 2}},
            match=[matchers.query_param_matcher({"count": "1", "start": "1"})],
        )
        assert list(integration_client(oauth(organization, "linkedin")).paginate("v2/jobs", params={"count": 1})) == [
            1,
            2,
        ]


def test_hellosign_page_numbers(organization):
    url = "https://api.hellosign.com/v3/signature_request/list"
    with responses.RequestsMock() as mock:
        mock.get(
            url,
            json={"list_info": {"page": 1, "num_pages": 2}, "signature_requests": [1]},
            match=[matchers.query_param_matcher({"page": "1"})],
        )
        mock.get(
            url,
            json={"list_info": {"page": 2, "num_pages": 2}, "signature_requests": [2]},
            match=[matchers.query_param_matcher({"page": "2"})],
        )
        items = integration_client(api_key(organization, "hellosign")).paginate(
            "signature_request/list", items_key="signature_requests"
        )
        assert list(items) == [1, 2]


def test_bamboohr_has_one_page(organization):
    url = "https://api.bamboohr.com/api/gateway.php/acme/v1/employees/directory"
    with responses.RequestsMock() as mock:
        mock.get(url, json={"employees": [1, 2]})
        items = integration_client(api_key(organization, "bamboohr", config={"company_domain": "acme"})).paginate(
            "employees/directory", items_key="employees"
        )
        assert list(items) == [1, 2]
