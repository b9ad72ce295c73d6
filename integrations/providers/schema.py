"""The shape of a catalogue entry: what the rest of the app may know about a provider.

Provider differences are fields here, typed where callers act on them (`HealthCheck.auth`,
`HealthCheck.success`, `Provider.token_auth_method`), so a caller reads the entry instead
of asking which provider it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from common.limits import MAX_CONFIG_STRING_LENGTH, MAX_URL_LENGTH

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
#: free text that is never put into a URL: any non-empty string, `/` and spaces allowed (an
#: e-mail address, an issuer URI, a key id, SAML metadata XML, entity ids)
TEXT = "text"
#: a JSON object (`custom` jwt `extra_claims`)
OBJECT = "object"
#: a positive integer (SAML `assertion_lifetime_seconds`)
INT = "int"

#: signing algorithms of the JWT bearer grant (`custom` jwt `config.algorithm`)
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256")
RATE_LIMIT = "rate_limit"

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
    #: longest accepted string (None: `common/limits.py`'s bound for the kind)
    max_length: int | None = None

    @property
    def length_limit(self) -> int | None:
        """The longest accepted string (each item, for a list); None for non-string kinds."""
        if self.kind == URL:
            return min(self.max_length or MAX_URL_LENGTH, MAX_URL_LENGTH)
        if self.kind in (STR, TEXT, LIST):
            return self.max_length or MAX_CONFIG_STRING_LENGTH
        return None


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` calls in any window of `per_seconds` seconds, up to `burst` of them
    back to back (integrations/ratelimit.py enforces it with one shared bucket per limit).

    `source` cites where the provider documents the quota, or says that it does not.
    """

    requests: float
    per_seconds: float
    burst: float = 1
    source: str = ""

    @property
    def name(self) -> str:
        """The bucket's name: one bucket per window length, so an override keeps its state."""
        return f"{self.per_seconds:g}s"

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "per_seconds": self.per_seconds, "burst": self.burst, "source": self.source}


MAX_RATE_LIMITS = 5


def parse_rate_limits(value: Any) -> tuple[RateLimit, ...]:
    """`config.rate_limit` as limits: one `{"requests", "per_seconds", "burst"?}` object or a
    list of 1-5 of them; positive numbers, `burst` (default 1) at most `requests`, one limit
    per window length. Raises ValueError with a message for people."""
    items = value if isinstance(value, list) else [value]
    if not 1 <= len(items) <= MAX_RATE_LIMITS:
        raise ValueError(f"Give 1 to {MAX_RATE_LIMITS} limits.")
    limits: list[RateLimit] = []
    for item in items:
        if not isinstance(item, dict) or not {"requests", "per_seconds"} <= set(item) <= {
            "requests",
            "per_seconds",
            "burst",
        }:
            raise ValueError('Each limit is {"requests": N, "per_seconds": S, "burst": B (optional)}.')
        numbers = {key: item[key] for key in ("requests", "per_seconds", "burst") if key in item}
        for key, number in numbers.items():
            if isinstance(number, bool) or not isinstance(number, int | float) or not 0 < number < 1e9:
                raise ValueError(f"{key} must be a positive number.")
        limit = RateLimit(float(numbers["requests"]), float(numbers["per_seconds"]), float(numbers.get("burst", 1)))
        if limit.burst < 1 or limit.burst > limit.requests:
            raise ValueError("burst must be at least 1 and at most requests.")
        if any(other.name == limit.name for other in limits):
            raise ValueError(f"Two limits with the same per_seconds ({limit.per_seconds:g}).")
        limits.append(RateLimit(limit.requests, limit.per_seconds, limit.burst, source="config.rate_limit"))
    return tuple(limits)


#: for providers whose quota is not documented: a conservative guess, said to be one
UNDOCUMENTED_RATE_LIMIT = RateLimit(
    5, 1, burst=1, source="No documented quota: a conservative default; override with config.rate_limit."
)


@dataclass(frozen=True)
class HealthCheck:
    """How to check an integration cheaply with its credential. `url` may contain `{config_key}`."""

    url: str = ""
    method: str = "GET"
    success: HealthCheckSuccess = "2xx"
    auth: HealthCheckAuth = "bearer"
    note: str = ""


@dataclass(frozen=True)
class JwtGrant:
    """How an integration of this provider mints tokens with the JWT bearer grant (RFC 7523).

    Templates take `{config_key}` placeholders, filled from the integration's config
    (`integrations/grants/jwt_bearer.py` builds the assertion from them).
    """

    #: where the signing key comes from: "private_key" (a PEM in `credentials.private_key`,
    #: the claims from the config) or "service_account" (a Google service-account JSON key in
    #: `credentials.service_account`: `iss` is its `client_email`, `aud` and the token URL its
    #: `token_uri`, the `kid` header its `private_key_id`)
    key: Literal["private_key", "service_account"] = "private_key"
    token_url: str = ""
    issuer: str = ""
    #: the principal the token acts for; unfilled (optional in the config): the issuer
    subject: str = ""
    #: `aud`; empty: the token URL (`config.audience` overrides, where the entry accepts it)
    audience: str = ""
    #: scopes when the config has none; empty: the provider's `default_scopes`
    default_scopes: tuple[str, ...] = ()
    #: where the scopes go: a `scope` claim of the assertion (DocuSign, Google), or a
    #: `scope` form parameter of the token request (RFC 7523 section 2.1)
    scope_in: Literal["claim", "form"] = "claim"
    #: the provider's OAuth authorization URL where a user grants the consent the grant needs
    #: (DocuSign), or "" when none is needed
    consent_url: str = ""
    #: what to tell a person when the token endpoint answers one of these errors (`{client_id}`,
    #: `{scopes}` are filled in)
    error_hints: dict[str, str] = field(default_factory=dict)


# Config keys every OAuth2 provider accepts: the integration may bring its own OAuth app
# (`client_id` here, `client_secret` in the credentials) and override unconfirmed facts.
OAUTH_COMMON_FIELDS = (
    ConfigField("client_id", help="OAuth client id; else <PREFIX>_CLIENT_ID from the environment"),
    ConfigField("scopes", LIST, help="scopes to request; else the provider's defaults"),
    ConfigField("use_pkce", BOOL, help="override the catalogue's PKCE support"),
    ConfigField("token_auth_method", choices=TOKEN_AUTH_METHODS, help="how the client authenticates at the token URL"),
    ConfigField(
        "redirect_uri",
        URL,
        help="else <PREFIX>_REDIRECT_URI, else PUBLIC_BASE_URL + the callback path",
        max_length=500,  # OAuthState.redirect_uri
    ),
)

# Config keys every provider accepts, whatever its auth type.
RATE_LIMIT_FIELD = ConfigField(
    "rate_limit",
    RATE_LIMIT,
    help=(
        'replaces the provider\'s default limits: {"requests": N, "per_seconds": S, "burst": B} '
        "or a list of them (docs/PROVIDERS.md)"
    ),
)
COMMON_FIELDS = (RATE_LIMIT_FIELD,)


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
    #: how `jwt` integrations mint tokens (required when `JWT` is in `auth_types`)
    jwt: JwtGrant | None = None
    #: the documented quotas of one connection (one token bucket each); `config.rate_limit`
    #: replaces them per integration
    rate_limits: tuple[RateLimit, ...] = (UNDOCUMENTED_RATE_LIMIT,)
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
            self.jwt.token_url if self.jwt else "",
        )
        return tuple(dict.fromkeys(url for url in candidates if url))  # each once, in order

    def all_config_fields(self) -> tuple[ConfigField, ...]:
        fields = self.config_fields
        if self.supports_oauth2:
            own = {f.name for f in fields}
            fields = fields + tuple(f for f in OAUTH_COMMON_FIELDS if f.name not in own)
        own = {f.name for f in fields}
        return fields + tuple(f for f in COMMON_FIELDS if f.name not in own)

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
                    "max_length": f.length_limit,
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
            "jwt": (
                {
                    "key": self.jwt.key,
                    "default_scopes": list(self.jwt.default_scopes or self.default_scopes),
                    "needs_consent": bool(self.jwt.consent_url),
                }
                if self.jwt and JWT in self.auth_types
                else None
            ),
            "rate_limits": [limit.as_dict() for limit in self.rate_limits],
            "notes": self.notes,
        }
