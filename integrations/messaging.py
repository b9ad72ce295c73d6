"""Messages in chat: post to a channel or a person, list channels (docs/HIRING.md).

- Slack Web API: `chat.postMessage` (`channel` is a channel id, or a user id for a direct
  message from the app; `text` is the notification fallback when `blocks` are sent);
  `conversations.list` with its cursor. Slack answers HTTP 200 with `{"ok": false,
  "error": ...}`: `missing_scope` is a `missing_scopes` issue (409), `ratelimited` a 429,
  `channel_not_found` / `not_in_channel` / `is_archived` / `user_not_found` a 400 naming
  the channel.
- Microsoft Graph (Teams): `POST teams/{team-id}/channels/{channel-id}/messages`; a person
  gets a one-on-one chat (`POST chats`, then `chats/{id}/messages`); channels are
  `GET teams/{team-id}/channels`.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from common.exceptions import ApplicationError
from integrations.client import ProviderError, integration_client
from integrations.client.scopes import call
from integrations.models import Integration

MESSAGE_PROVIDERS = ("slack", "microsoft_teams")
#: Slack errors that are the caller's (a channel it named), not the connection's
SLACK_CHANNEL_ERRORS = {
    "channel_not_found": "the channel does not exist or the app cannot see it",
    "not_in_channel": "the app is not a member of the channel: invite it first",
    "is_archived": "the channel is archived",
    "user_not_found": "no such user",
    "invalid_blocks": "Slack refused the blocks",
    "msg_too_long": "the message is too long",
}
MAX_CHANNELS = 1000


class NotMessaging(ApplicationError):
    pass


def _check(integration: Integration) -> None:
    if integration.provider not in MESSAGE_PROVIDERS:
        raise NotMessaging(
            f"Integration {integration.pk} is a {integration.provider} integration, not a messaging provider "
            f"({', '.join(MESSAGE_PROVIDERS)})."
        )
    if integration.status != Integration.Status.ACTIVE:
        raise NotMessaging(f"Integration {integration.pk} is not connected (status {integration.status}).")


def message_post(
    *,
    integration: Integration,
    text: str,
    channel: str = "",
    user: str = "",
    blocks: list[dict[str, Any]] | None = None,
    team_id: str = "",
) -> dict[str, Any]:
    """Post `text` (and Slack `blocks`) to a channel or a person; what the provider made."""
    _check(integration)
    client = integration_client(integration)
    if integration.provider == "slack":
        body: dict[str, Any] = {"channel": channel or user, "text": text}
        if blocks:
            body["blocks"] = blocks
        try:
            answer = call(client, "POST", "chat.postMessage", json=body, scopes=["chat:write"])
        except ProviderError as error:
            reason = SLACK_CHANNEL_ERRORS.get(error.code)
            if reason is None or error.status != 200:
                raise
            raise ApplicationError(
                f"Slack refused the message to {channel or user}: {reason} ({error.code}).",
                errors={"channel" if channel else "user": [error.code]},
            ) from None
        return {"provider": "slack", "channel": answer.get("channel", ""), "message_id": answer.get("ts", "")}
    if blocks:
        raise ApplicationError("blocks are Slack's; Teams messages take text.", errors={"blocks": ["Slack only."]})
    message = {"body": {"contentType": "html", "content": escape(text).replace("\n", "<br>")}}
    if channel:
        if not team_id:
            raise ApplicationError("A Teams channel message needs team_id.", errors={"team_id": ["Required."]})
        answer = call(
            client,
            "POST",
            f"teams/{quote(team_id)}/channels/{quote(channel, safe=':@')}/messages",
            json=message,
            scopes=["ChannelMessage.Send"],
        )
        return {"provider": "microsoft_teams", "channel": channel, "message_id": answer.get("id", "")}
    me = call(client, "GET", "me", scopes=["User.Read"])
    chat = call(
        client,
        "POST",
        "chats",
        json={
            "chatType": "oneOnOne",
            "members": [
                {
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "roles": ["owner"],
                    "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{member}')",
                }
                for member in (me["id"], user)
            ],
        },
        scopes=["Chat.Create"],
    )
    answer = call(
        client, "POST", f"chats/{quote(chat['id'], safe=':@')}/messages", json=message, scopes=["ChatMessage.Send"]
    )
    return {"provider": "microsoft_teams", "channel": chat["id"], "message_id": answer.get("id", "")}


def message_channels(*, integration: Integration, team_id: str = "", limit: int = MAX_CHANNELS) -> list[dict[str, Any]]:
    """The channels a message can go to: Slack's conversations (every page), a team's channels."""
    _check(integration)
    client = integration_client(integration)
    channels: list[dict[str, Any]] = []
    if integration.provider == "slack":
        params: dict[str, Any] = {"types": "public_channel,private_channel", "exclude_archived": "true", "limit": 200}
        while len(channels) < limit:
            page = call(client, "GET", "conversations.list", params=params, scopes=["channels:read"]) or {}
            channels += [
                {
                    "id": c.get("id", ""),
                    "name": c.get("name", ""),
                    "is_private": bool(c.get("is_private")),
                    "is_member": bool(c.get("is_member")),
                }
                for c in page.get("channels") or []
            ]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
            params["cursor"] = cursor
        return channels[:limit]
    if not team_id:
        raise ApplicationError("Teams channels belong to a team: pass team_id.", errors={"team_id": ["Required."]})
    answer = call(client, "GET", f"teams/{quote(team_id)}/channels", scopes=["Channel.ReadBasic.All"]) or {}
    for channel in (answer.get("value") or [])[:limit]:
        channels.append(
            {
                "id": channel.get("id", ""),
                "name": channel.get("displayName", ""),
                "is_private": channel.get("membershipType") == "private",
                "is_member": True,
            }
        )
    return channels
