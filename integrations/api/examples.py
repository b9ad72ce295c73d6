"""Request examples of the integrations API, shown in /api/schema/ (Swagger UI, ReDoc).

tests/common/test_schema_examples.py sends each one to its endpoint and expects it accepted
(the OAuth callback's needs a live `state`: its shape is checked instead).
"""

from drf_spectacular.utils import OpenApiExample

INTEGRATION_CREATE = [
    OpenApiExample(
        "An API key (BambooHR)",
        value={
            "name": "HR",
            "provider": "bamboohr",
            "auth_type": "api_key",
            "config": {"company_domain": "acme"},
            "credentials": {"api_key": "your-bamboohr-api-key"},
        },
        request_only=True,
    ),
    OpenApiExample(
        "Any OAuth 2.0 server (custom)",
        value={
            "name": "Our IdP",
            "provider": "custom",
            "auth_type": "oauth2",
            "config": {
                "authorization_url": "https://idp.example.com/oauth2/authorize",
                "token_url": "https://idp.example.com/oauth2/token",
                "client_id": "my-client",
                "scopes": ["openid", "offline_access"],
                "health_check_url": "https://idp.example.com/oauth2/userinfo",
            },
            "credentials": {"client_secret": "your-client-secret"},
        },
        description="Then GET .../oauth/authorize/ and open its `start_url` in a browser.",
        request_only=True,
    ),
]
INTEGRATION_UPDATE = [
    OpenApiExample(
        "Replace the config, keep the credentials",
        value={"name": "HR", "provider": "bamboohr", "auth_type": "api_key", "config": {"company_domain": "acme-hr"}},
        description="Credentials left out are kept; sent, they replace the stored ones.",
        request_only=True,
    ),
]
INTEGRATION_PATCH = [
    OpenApiExample("Rename", value={"name": "HR (Acme)"}, request_only=True),
    OpenApiExample(
        "Replace the credentials", value={"credentials": {"api_key": "your-new-bamboohr-api-key"}}, request_only=True
    ),
]
SYNC_RESULT = [
    OpenApiExample("A sync that succeeded", value={"success": True}, request_only=True),
    OpenApiExample(
        "A sync that failed",
        value={"success": False, "error": "Candidate export failed: 429 Too Many Requests"},
        request_only=True,
    ),
]
OAUTH_CALLBACK = [
    OpenApiExample(
        "The code and state the provider sent to the redirect URI",
        value={"code": "SplxlOBeZQQYbYS6WxSbIA", "state": "the-state-from-oauth-authorize"},
        description="`state` is the one .../oauth/authorize/ returned; it is single-use and expires.",
        request_only=True,
    ),
]
