"""Messages: Slack `chat.postMessage` with blocks (200 `ok: false` errors mapped), channels
through `conversations.list`'s cursor, Teams channel and one-on-one messages through Graph,
permission refusals as `missing_scopes` issues."""

from __future__ import annotations

from http import HTTPStatus

import pytest
import responses
from responses import matchers

from integrations.models import ConnectionIssue
from tests.api_errors import error_detail, field_errors, problem
from tests.integrations.client.conftest import api_key

from .conftest import GRAPH, SLACK, TOKEN, body_of, oauth

pytestmark = pytest.mark.django_db

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Sam Lee* accepted the interview."}}]


def url(integration, rest: str = "") -> str:
    return f"/api/integrations/{integration.pk}/messages/{rest}"


def test_slack_post_to_a_channel_with_blocks(api_client, organization):
    integration = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        post = mock.post(
            SLACK + "/chat.postMessage",
            json={"ok": True, "channel": "C0123456789", "ts": "1503435956.000247", "message": {"text": "Sam accepted"}},
            match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
        )
        response = api_client.post(
            url(integration), {"channel": "C0123456789", "text": "Sam accepted", "blocks": BLOCKS}, format="json"
        )
    assert response.status_code == HTTPStatus.OK, response.content
    assert body_of(post.calls[0]) == {"channel": "C0123456789", "text": "Sam accepted", "blocks": BLOCKS}
    assert response.json() == {"provider": "slack", "channel": "C0123456789", "message_id": "1503435956.000247"}


def test_slack_post_to_a_user_is_a_direct_message(api_client, organization):
    integration = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        post = mock.post(SLACK + "/chat.postMessage", json={"ok": True, "channel": "D024BE91L", "ts": "1.2"})
        response = api_client.post(
            url(integration), {"user": "U024BE7LH", "text": "Your interview is at 3"}, format="json"
        )
    assert body_of(post.calls[0]) == {"channel": "U024BE7LH", "text": "Your interview is at 3"}
    assert response.json()["channel"] == "D024BE91L"


@pytest.mark.parametrize(("error", "words"), [("channel_not_found", "does not exist"), ("not_in_channel", "invite")])
def test_slack_channel_errors_are_a_400_naming_the_channel(api_client, organization, error, words):
    integration = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        mock.post(SLACK + "/chat.postMessage", json={"ok": False, "error": error})
        response = api_client.post(url(integration), {"channel": "C999", "text": "hi"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "C999" in error_detail(response) and words in error_detail(response)
    assert field_errors(response) == {"channel": [error]}
    assert not ConnectionIssue.objects.exists()


def test_slack_missing_scope_opens_a_missing_scopes_issue(api_client, organization):
    integration = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        mock.post(
            SLACK + "/chat.postMessage",
            json={"ok": False, "error": "missing_scope", "needed": "chat:write", "provided": "channels:read"},
        )
        response = api_client.post(url(integration), {"channel": "C1", "text": "hi"}, format="json")
    assert response.status_code == HTTPStatus.CONFLICT
    assert problem(response)["missing_scopes"] == ["chat:write"]
    issue = ConnectionIssue.objects.get(integration=integration)
    assert (issue.kind, issue.status, issue.details["missing_scopes"]) == ("missing_scopes", "open", ["chat:write"])
    assert "reconnect_url" in issue.details


def test_slack_ratelimited_is_a_429(api_client, organization):
    integration = oauth(organization, "slack")
    with responses.RequestsMock() as mock:
        mock.post(
            SLACK + "/chat.postMessage", json={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "30"}
        )
        response = api_client.post(url(integration), {"channel": "C1", "text": "hi"}, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert problem(response)["retry_after"] == 30


def test_slack_channels_follow_the_cursor(api_client, organization):
    integration = oauth(organization, "slack")
    base = {"types": "public_channel,private_channel", "exclude_archived": "true", "limit": "200"}
    with responses.RequestsMock() as mock:
        mock.get(
            SLACK + "/conversations.list",
            json={
                "ok": True,
                "channels": [{"id": "C1", "name": "hiring", "is_private": False, "is_member": True}],
                "response_metadata": {"next_cursor": "dGVhbTpDMDYxRkE1UEI="},
            },
            match=[matchers.query_param_matcher(base)],
        )
        mock.get(
            SLACK + "/conversations.list",
            json={
                "ok": True,
                "channels": [{"id": "G2", "name": "offers", "is_private": True, "is_member": False}],
                "response_metadata": {"next_cursor": ""},
            },
            match=[matchers.query_param_matcher({**base, "cursor": "dGVhbTpDMDYxRkE1UEI="})],
        )
        response = api_client.get(url(integration, "channels/"))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == [
        {"id": "C1", "name": "hiring", "is_private": False, "is_member": True},
        {"id": "G2", "name": "offers", "is_private": True, "is_member": False},
    ]


def test_teams_channel_message_and_channels(api_client, organization):
    integration = oauth(organization, "microsoft_teams")
    with responses.RequestsMock() as mock:
        post = mock.post(
            GRAPH + "/teams/team-1/channels/19:abc@thread.tacv2/messages",
            status=201,
            json={
                "id": "1616990032035",
                "createdDateTime": "2026-03-02T10:00:00Z",
                "webUrl": "https://teams.microsoft.com/l/message/x",
            },
        )
        mock.get(
            GRAPH + "/teams/team-1/channels",
            json={
                "value": [
                    {"id": "19:abc@thread.tacv2", "displayName": "Hiring", "membershipType": "standard"},
                    {"id": "19:def@thread.tacv2", "displayName": "Offers", "membershipType": "private"},
                ]
            },
        )
        sent = api_client.post(
            url(integration),
            {"team_id": "team-1", "channel": "19:abc@thread.tacv2", "text": "Moved to <4pm>"},
            format="json",
        )
        listed = api_client.get(url(integration, "channels/?team_id=team-1"))
    assert sent.status_code == HTTPStatus.OK, sent.content
    assert body_of(post.calls[0]) == {"body": {"contentType": "html", "content": "Moved to &lt;4pm&gt;"}}
    assert sent.json() == {
        "provider": "microsoft_teams",
        "channel": "19:abc@thread.tacv2",
        "message_id": "1616990032035",
    }
    assert [(c["name"], c["is_private"]) for c in listed.json()] == [("Hiring", False), ("Offers", True)]


def test_teams_message_to_a_user_opens_a_one_on_one_chat(api_client, organization):
    integration = oauth(organization, "microsoft_teams")
    with responses.RequestsMock() as mock:
        mock.get(GRAPH + "/me", json={"id": "me-id", "displayName": "Recruiter"})
        chat = mock.post(GRAPH + "/chats", status=201, json={"id": "19:me_you@unq.gbl.spaces", "chatType": "oneOnOne"})
        message = mock.post(GRAPH + "/chats/19:me_you@unq.gbl.spaces/messages", status=201, json={"id": "m1"})
        response = api_client.post(url(integration), {"user": "you@example.com", "text": "hi"}, format="json")
    assert response.json()["message_id"] == "m1"
    members = body_of(chat.calls[0])["members"]
    assert [m["user@odata.bind"] for m in members] == [
        "https://graph.microsoft.com/v1.0/users('me-id')",
        "https://graph.microsoft.com/v1.0/users('you@example.com')",
    ]
    assert body_of(message.calls[0])["body"]["content"] == "hi"


def test_teams_access_denied_opens_a_missing_scopes_issue(api_client, organization):
    integration = oauth(organization, "microsoft_teams")
    with responses.RequestsMock() as mock:
        mock.get(
            GRAPH + "/teams/team-1/channels",
            status=403,
            json={
                "error": {
                    "code": "Authorization_RequestDenied",
                    "message": "Insufficient privileges to complete the operation.",
                }
            },
        )
        response = api_client.get(url(integration, "channels/?team_id=team-1"))
    assert response.status_code == HTTPStatus.CONFLICT
    assert ConnectionIssue.objects.get(integration=integration).details["missing_scopes"] == ["Channel.ReadBasic.All"]


@pytest.mark.parametrize(
    "body",
    [
        {"text": "hi"},  # neither channel nor user
        {"text": "hi", "channel": "C1", "user": "U1"},
        {"channel": "C1"},
        {"channel": "C1", "text": "x" * 4001},
        {"channel": "C1", "text": "hi", "blocks": "not a list"},
        {"channel": "C1", "text": "hi", "extra": True},
    ],
)
def test_bad_message_input_is_a_json_400(api_client, organization, body):
    integration = oauth(organization, "slack")
    with responses.RequestsMock():
        response = api_client.post(url(integration), body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert problem(response)["type"] == "validation_error"


def test_teams_needs_a_team_and_takes_no_blocks(api_client, organization):
    integration = oauth(organization, "microsoft_teams")
    with responses.RequestsMock():
        assert "team_id" in field_errors(api_client.get(url(integration, "channels/")))
        assert "team_id" in field_errors(
            api_client.post(url(integration), {"channel": "19:a", "text": "hi"}, format="json")
        )
        assert "blocks" in field_errors(
            api_client.post(
                url(integration), {"channel": "19:a", "team_id": "t", "text": "hi", "blocks": BLOCKS}, format="json"
            )
        )


def test_other_organizations_and_other_providers(api_client, other_client, organization):
    slack = oauth(organization, "slack")
    with responses.RequestsMock():
        assert other_client.post(url(slack), {"channel": "C1", "text": "hi"}, format="json").status_code == 404
        assert other_client.get(url(slack, "channels/")).status_code == 404
        rippling = api_key(organization, "rippling")
        response = api_client.post(url(rippling), {"channel": "C1", "text": "hi"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST and "not a messaging provider" in error_detail(response)


def test_a_read_only_key_cannot_post(read_only_client, organization):
    slack = oauth(organization, "slack")
    with responses.RequestsMock():
        response = read_only_client.post(url(slack), {"channel": "C1", "text": "hi"}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
