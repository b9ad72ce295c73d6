"""The shape of a catalogue entry: what the rest of the app may know about a provider.

Provider differences are fields here, typed where callers act on them (`HealthCheck.auth`,
`HealthCheck.success`, `Provider.token_auth_method`), so a caller reads the entry instead
of asking which provider it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

# Categories
CALENDAR = "calendar"
HRIS = "hris"
E_SIGNATURE = "e_signature"
JOB_BOARD = "job_board"
COMMUNICATION = "communication"
CATEGORIES = (CALENDAR, HRIS, E_SIGNATURE, JOB_BOARD, COMMUNICATION)

# Auth types (Integration.AuthType mirrors these values)
OAUTH2 = "oauth2"
API_KEY = "api_key"
JWT = "jwt"
SAML = "saml"
AUTH_TYPES = (OAUTH2, API_KEY, JWT, SAML)

CLIENT_SECRET_POST: Final = "client_secret_post"
CLIENT_SECRET_BASIC: Final = "client_secret_basic"
TOKEN_AUTH_METHODS = (CLIENT_SECRET_POST, CLIENT_SECRET_BASIC)
TokenAuthMethod = Literal["client_secret_post", "client_secret_basic"]

# Config value kinds
STR = "str"
URL = "url"
LIST = "list"
BOOL = "bool"

#: how an API-key integration's credential is sent by the health check (OAuth2 tokens are
#: always sent as Bearer): "bearer" (`api_key` or `token` as a Bearer token),
#: "basic_api_key" (the key as the Basic username, password "x"), "basic" (the
#: `username`/`password` credentials) or "query" (query parameters: not supported, the
#: check reports degraded)
HealthCheckAuth = Literal["bearer", "basic", "basic_api_key", "query"]
#: "2xx" (any 2xx answer), "json_ok" (2xx and `"ok": true`, Slack) or "none" (no check is
#: available: report degraded honestly)
HealthCheckSuccess = Literal["2xx", "json_ok", "none"]


#: how `integrations.client` sends an API-key credential; "" means as `health_check.auth` says
ApiAuth = Literal["", "bearer", "basic", "basic_api_key", "query"]
#: how a list endpoint pages (`Pagination`): "none" (one page), "token" (a token from the
#: body goes back as a query parameter: Google `pageToken`, Slack `cursor`), "next_link"
#: (the body holds the next page's URL: Graph `@odata.nextLink`, DocuSign `nextUri`),
#: "offset" (`offset`/`limit` until `total`: Workday, LinkedIn `start`/`count`) or "page"
#: (a page number until the body's page count: Dropbox Sign)
PaginationStyle = Literal["none", "token", "next_link", "offset", "page"]
#: where the API's base URL comes from: "template" (`api_base_url`, filled from the config)
#: or "userinfo_accounts" (DocuSign: `accounts[].base_uri` of the userinfo answer)
ApiBaseSource = Literal["template", "userinfo_accounts"]


@dataclass(frozen=True)
class Pagination:
    """How `integrations.client` pages a list. Fields are JSON paths (tuples of keys)."""

    style: PaginationStyle = "none"
    #: the query parameter carrying the token, offset or page number
    param: str = ""
    #: where the next token or next link is in a page
    next_field: tuple[str, ...] = ()
    #: where a page's items are, when one key serves every list of the API ("" varies: pass
    #: `items_key=` to `paginate`)
    items_key: tuple[str, ...] = ()
    #: offset style: the page-size parameter and its value; offset and page styles: where
    #: the total (items or pages) is in a page
    limit_param: str = ""
    page_size: int = 100
    total_field: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigField:
    name: str
    kind: str = STR
    #: auth types for which the key is required (empty: always optional)
    required_for: tuple[str, ...] = ()
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class HealthCheck:
    """How to check an integration cheaply with its credential. `url` may contain `{config_key}`."""

    url: str = ""
    method: str = "GET"
    success: HealthCheckSuccess = "2xx"
    auth: HealthCheckAuth = "bearer"
    note: str = ""


# Config keys every OAuth2 provider accepts: the integration may bring its own OAuth app
# (`client_id` here, `client_secret` in the credentials) and override unconfirmed facts.
OAUTH_COMMON_FIELDS = (
    ConfigField("client_id", help="OAuth client id; else <PREFIX>_CLIENT_ID from the environment"),
    ConfigField("scopes", LIST, help="scopes to request; else the provider's defaults"),
    ConfigField("use_pkce", BOOL, help="override the catalogue's PKCE support"),
    ConfigField("token_auth_method", choices=TOKEN_AUTH_METHODS, help="how the client authenticates at the token URL"),
    ConfigField("redirect_uri", URL, help="else <PREFIX>_REDIRECT_URI, else PUBLIC_BASE_URL + the callback path"),
)


@dataclass(frozen=True)
class Provider:
    name: str
    display_name: str
    category: str
    auth_types: tuple[str, ...]
    #: prefix of the deployment's OAuth app settings (`<PREFIX>_CLIENT_ID`, `_CLIENT_SECRET`,
    #: `_REDIRECT_URI`); empty: there is no shared app, every integration brings its own
    env_prefix: str = ""
    authorization_url: str = ""
    token_url: str = ""
    #: where refresh requests go when it differs from token_url (Dropbox Sign)
    refresh_url: str = ""
    #: further endpoints we call or send tokens to, when the provider has them
    userinfo_url: str = ""
    revoke_url: str = ""
    #: the REST API's base URL when the config shapes it (Workday `api_domain`)
    api_base_url: str = ""
    #: the provider's own hosts ("slack.com", "*.workday.com": any subdomain). The shared app
    #: (`env_prefix`) is used only when every endpoint is on one of them (`hosts.py`).
    own_hosts: tuple[str, ...] = ()
    default_scopes: tuple[str, ...] = ()
    #: how scopes are joined in the authorization URL (Slack: ",")
    scope_separator: str = " "
    supports_pkce: bool = False
    token_auth_method: TokenAuthMethod = CLIENT_SECRET_POST
    extra_authorize_params: dict[str, str] = field(default_factory=dict)
    config_fields: tuple[ConfigField, ...] = ()
    #: credential keys an `api_key` integration needs, all of them (beside the generic rules)
    api_key_credentials: tuple[str, ...] = ("api_key",)
    #: credential keys of which an `api_key` integration needs at least one
    api_key_alternatives: tuple[str, ...] = ()
    health_check: HealthCheck = field(default_factory=HealthCheck)
    #: the provider API client (`integrations.client`): how an API key is sent ("" as the
    #: health check), how lists page, where the base URL comes from and, for a discovered
    #: base URL, the hosts it may be on; `path_params` are config keys a path may name
    #: (`{tenant}`), filled in by the client
    api_auth: ApiAuth = ""
    pagination: Pagination = field(default_factory=Pagination)
    api_base_source: ApiBaseSource = "template"
    api_base_suffix: str = ""
    api_hosts: tuple[str, ...] = ()
    path_params: tuple[str, ...] = ()
    notes: str = ""

    @property
    def supports_oauth2(self) -> bool:
        return OAUTH2 in self.auth_types

    @property
    def has_shared_oauth_app(self) -> bool:
        """Whether the deployment may configure one OAuth app for all integrations of this
        provider (`<PREFIX>_CLIENT_ID`); without one, `config.client_id` is the app."""
        return bool(self.env_prefix)

    def endpoint_templates(self) -> tuple[str, ...]:
        """Every URL (template) an integration of this provider makes us call or send a token to."""
        candidates = (
            self.authorization_url,
            self.token_url,
            self.refresh_url,
            self.userinfo_url,
            self.revoke_url,
            self.health_check.url,
            self.api_base_url,
        )
        return tuple(url for url in candidates if url)

    def all_config_fields(self) -> tuple[ConfigField, ...]:
        fields = self.config_fields
        if self.supports_oauth2:
            own = {f.name for f in fields}
            fields = fields + tuple(f for f in OAUTH_COMMON_FIELDS if f.name not in own)
        return fields

    def config_field(self, name: str) -> ConfigField | None:
        return next((f for f in self.all_config_fields() if f.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "category": self.category,
            "auth_types": list(self.auth_types),
            "authorization_url": self.authorization_url,
            "token_url": self.token_url,
            "default_scopes": list(self.default_scopes),
            "supports_pkce": self.supports_pkce,
            "token_auth_method": self.token_auth_method if self.supports_oauth2 else "",
            "extra_authorize_params": dict(self.extra_authorize_params),
            "config_fields": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "required_for": list(f.required_for),
                    "default": f.default,
                    "choices": list(f.choices),
                    "help": f.help,
                }
                for f in self.all_config_fields()
            ],
            "api_key_credentials": list(self.api_key_credentials) if API_KEY in self.auth_types else [],
            "api_key_alternatives": list(self.api_key_alternatives) if API_KEY in self.auth_types else [],
            "health_check": {
                "method": self.health_check.method,
                "url": self.health_check.url,
                "success": self.health_check.success,
                "auth": self.health_check.auth,
                "note": self.health_check.note,
            },
            "notes": self.notes,
        }
