import json
from urllib.parse import parse_qs, urlsplit

from integrations.services import integration_create

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
CUSTOM_CONFIG = {
    "authorization_url": "https://auth.example.com/oauth/authorize",
    "token_url": "https://auth.example.com/oauth/token",
    "client_id": "custom-client",
    "scopes": ["read", "write"],
}


def oauth_integration(organization, provider="google_calendar", *, name=None, config=None, credentials=None):
    return integration_create(
        organization=organization,
        name=name or f"{provider} integration",
        provider=provider,
        auth_type="oauth2",
        config=config or {},
        credentials=credentials or {},
    )


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def form(request) -> dict[str, str]:
    body = request.body if isinstance(request.body, str) else request.body.decode()
    return {key: values[0] for key, values in parse_qs(body).items()}


def token_body(access="new-access", refresh="new-refresh", expires_in=3600, **extra) -> str:
    payload = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in, **extra}
    if refresh:
        payload["refresh_token"] = refresh
    return json.dumps(payload)
