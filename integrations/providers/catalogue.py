"""The provider catalogue: one data entry per provider, no code per provider.

Everything the rest of the app needs to know about a provider lives in its entry: its
category, the auth types it supports, its OAuth endpoints (URL templates filled from the
integration's `config`), default scopes, PKCE support, extra authorization parameters,
the config keys it needs and how its health is checked (`schema.py` says what each field
means). Facts the provider notes mark as unconfirmed are left overridable through
`config` (`use_pkce`, `token_auth_method`, `health_check_url`, ...).
"""

from __future__ import annotations

from .schema import (
    API_KEY,
    BOOL,
    CALENDAR,
    CATEGORIES,
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    COMMUNICATION,
    E_SIGNATURE,
    HRIS,
    INT,
    JOB_BOARD,
    JWT,
    JWT_ALGORITHMS,
    LIST,
    OAUTH2,
    OBJECT,
    SAML,
    TEXT,
    TOKEN_AUTH_METHODS,
    URL,
    ConfigField,
    HealthCheck,
    JwtGrant,
    Pagination,
    Provider,
    RateLimit,
)

GOOGLE_AUTH = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
# Google issues a refresh token only for offline access, and re-issues it only with consent.
GOOGLE_PARAMS = {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}
# Service accounts with domain-wide delegation (jwt): the key file says who signs and where
# to; the config says which Workspace user to act as.
GOOGLE_JWT = JwtGrant(
    key="service_account",
    subject="{subject}",
    error_hints={
        "unauthorized_client": (
            "domain-wide delegation is not granted: in admin.google.com, Security > Access and data control > "
            "API controls > Manage domain-wide delegation, add client ID {client_id} with the scopes {scopes}"
        ),
    },
)
GOOGLE_SUBJECT = ConfigField(
    "subject", TEXT, required_for=(JWT,), help="jwt: the Workspace user to act as, e.g. recruiter@example.com"
)
MS_AUTH = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
MS_TOKEN = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
MS_TENANT = ConfigField("tenant", default="common", help="Entra tenant id or domain; `common` for multi-tenant apps")
MS_HEALTH = HealthCheck("https://graph.microsoft.com/v1.0/me")
MS_HOSTS = ("login.microsoftonline.com", "graph.microsoft.com")
# SAML (`integrations/saml.py`): the identity provider's metadata, one of the first two keys.
SAML_IDP_FIELDS = (
    ConfigField(
        "idp_metadata",
        TEXT,
        help="SAML: the IdP's metadata XML (an md:EntityDescriptor)",
        max_length=1024 * 1024,  # integrations/saml.py MAX_METADATA_BYTES
    ),
    ConfigField("idp_metadata_url", URL, help="SAML: where the IdP publishes its metadata (https)"),
    ConfigField("idp_entity_id", TEXT, help="SAML: the IdP's entityID; the metadata must name it"),
)
# The SAML 2.0 bearer assertion grant (RFC 7522, `integrations/grants/saml_bearer.py`), on
# when `token_url` is set; with `client_id`, `token_auth_method`, `scopes` beside it.
SAML_BEARER_FIELDS = (
    ConfigField("issuer", TEXT, help="SAML bearer grant: the assertion's Issuer, as registered at the server"),
    ConfigField("subject", TEXT, help="SAML bearer grant: the NameID of the user the token acts for"),
    ConfigField("audience", TEXT, help="SAML bearer grant: the Audience the server expects; default token_url"),
    ConfigField("assertion_lifetime_seconds", INT, help="SAML bearer grant: assertion lifetime, default 300"),
)

# Rate limits: the documented quota of one connection, with its source (docs/PROVIDERS.md).
GOOGLE_QUOTA = (
    "developers.google.com/calendar/api/guides/quota: per-minute quotas per project and per user "
    "(sliding window; 403/429 usageLimits when exceeded); the figures are the project's, shown in "
    "the Cloud console. 600/min per user is a common default, not a documented one."
)
CALENDAR_LIMITS = (RateLimit(600, 60, burst=10, source=GOOGLE_QUOTA),)
GMAIL_LIMITS = (
    RateLimit(
        50,
        1,
        burst=10,
        source=(
            "developers.google.com/gmail/api/reference/quota: 15,000 quota units per user per minute "
            "(250/s); a read costs 5 units, so 50 reads/s; a send costs 100 units (2.5/s): lower it for "
            "send-heavy use."
        ),
    ),
)
GRAPH_OUTLOOK_LIMITS = (
    RateLimit(
        10_000,
        600,
        burst=20,
        source=(
            "learn.microsoft.com/graph/throttling-limits (Outlook service): 10,000 requests per 10 minutes "
            "per app per mailbox, 4 concurrent; Graph answers 429 with Retry-After."
        ),
    ),
)
GRAPH_TEAMS_LIMITS = (
    RateLimit(
        10,
        1,
        burst=5,
        source=(
            "learn.microsoft.com/graph/throttling-limits (Microsoft Teams service): limits differ per API "
            "(per app per tenant, per second); no single figure: a conservative 10/s."
        ),
    ),
)
SLACK_LIMITS = (
    RateLimit(
        50,
        60,
        burst=5,
        source=(
            "api.slack.com/apis/rate-limits: per method per workspace tiers, Tier 1 1+/min, Tier 2 20+/min, "
            "Tier 3 50+/min, Tier 4 100+/min; chat.postMessage about 1 message/s per channel. "
            "Tier 3 is the default here; 429 with Retry-After when exceeded."
        ),
    ),
)
DOCUSIGN_LIMITS = (
    RateLimit(
        3000,
        3600,
        burst=50,
        source=(
            "developers.docusign.com API rules and limits: 3,000 calls per hour per account "
            "(HOURLY_APIINVOCATION_LIMIT_EXCEEDED), X-RateLimit-Remaining/Reset headers."
        ),
    ),
    RateLimit(500, 30, burst=50, source="the same page: a burst limit of 500 calls per 30 seconds."),
)
HELLOSIGN_LIMITS = (
    RateLimit(
        100,
        60,
        burst=5,
        source=(
            "help.dropbox.com/integrations/api-requests-that-count-against-limit: 100 requests/min for standard "
            "endpoints, 25/min for high-tier ones (sending, files), 10/min in test mode, per account."
        ),
    ),
)
BAMBOOHR_LIMITS = (
    RateLimit(
        5,
        1,
        burst=1,
        source=(
            "documentation.bamboohr.com: no published figure; throttled requests answer 503 with "
            "Retry-After, which is honoured. 5/s is a conservative guess."
        ),
    ),
)
LINKEDIN_LIMITS = (
    RateLimit(
        100,
        86_400,
        burst=10,
        source=(
            "learn.microsoft.com/linkedin/shared/api-guide/concepts/rate-limits: daily limits per application "
            "and per member, per API, shown in the Developer Portal only: a conservative 100/day."
        ),
    ),
)
UNDOCUMENTED = "No documented quota found: a conservative default; override with config.rate_limit."
# How lists page (integrations/client): Google's page tokens, Graph's absolute next links.
GRAPH_API = "https://graph.microsoft.com/v1.0"
GRAPH_PAGES = Pagination("next_link", next_field=("@odata.nextLink",), items_key=("value",))


def google_pages(items_key: str) -> Pagination:
    return Pagination("token", param="pageToken", next_field=("nextPageToken",), items_key=(items_key,))


_CATALOGUE: tuple[Provider, ...] = (
    Provider(
        name="google_calendar",
        display_name="Google Calendar",
        category=CALENDAR,
        auth_types=(OAUTH2, JWT),
        env_prefix="GOOGLE",
        own_hosts=("accounts.google.com", "*.googleapis.com"),
        authorization_url=GOOGLE_AUTH,
        token_url=GOOGLE_TOKEN,
        default_scopes=(
            "https://www.googleapis.com/auth/calendar.readonly",
            "https://www.googleapis.com/auth/calendar.events",
        ),
        supports_pkce=True,
        extra_authorize_params=GOOGLE_PARAMS,
        config_fields=(GOOGLE_SUBJECT,),
        rate_limits=CALENDAR_LIMITS,
        health_check=HealthCheck("https://www.googleapis.com/calendar/v3/users/me/calendarList/primary"),
        jwt=GOOGLE_JWT,
        api_base_url="https://www.googleapis.com/calendar/v3",
        pagination=google_pages("items"),
    ),
    Provider(
        name="gmail",
        display_name="Gmail",
        category=COMMUNICATION,
        auth_types=(OAUTH2, JWT),
        env_prefix="GOOGLE",
        own_hosts=("accounts.google.com", "*.googleapis.com"),
        authorization_url=GOOGLE_AUTH,
        token_url=GOOGLE_TOKEN,
        default_scopes=(
            "https://www.googleapis.com/auth/gmail.readonly",
            "https://www.googleapis.com/auth/gmail.send",
        ),
        supports_pkce=True,
        extra_authorize_params=GOOGLE_PARAMS,
        config_fields=(GOOGLE_SUBJECT,),
        rate_limits=GMAIL_LIMITS,
        health_check=HealthCheck("https://gmail.googleapis.com/gmail/v1/users/me/profile"),
        jwt=GOOGLE_JWT,
        api_base_url="https://gmail.googleapis.com/gmail/v1",
        pagination=google_pages("messages"),
    ),
    Provider(
        name="microsoft_outlook",
        display_name="Microsoft Outlook / Office 365 calendar",
        category=CALENDAR,
        auth_types=(OAUTH2,),
        env_prefix="MICROSOFT",
        own_hosts=MS_HOSTS,
        authorization_url=MS_AUTH,
        token_url=MS_TOKEN,
        default_scopes=("Calendars.ReadWrite", "User.Read", "offline_access"),
        supports_pkce=True,
        config_fields=(MS_TENANT,),
        rate_limits=GRAPH_OUTLOOK_LIMITS,
        health_check=MS_HEALTH,
        api_base_url=GRAPH_API,
        pagination=GRAPH_PAGES,
        notes="Issues a new refresh token on every refresh; it is stored each time.",
    ),
    Provider(
        name="outlook_mail",
        display_name="Outlook mail",
        category=COMMUNICATION,
        auth_types=(OAUTH2,),
        env_prefix="MICROSOFT",
        own_hosts=MS_HOSTS,
        authorization_url=MS_AUTH,
        token_url=MS_TOKEN,
        default_scopes=("Mail.Read", "Mail.Send", "offline_access"),
        supports_pkce=True,
        config_fields=(MS_TENANT,),
        rate_limits=GRAPH_OUTLOOK_LIMITS,
        health_check=MS_HEALTH,
        api_base_url=GRAPH_API,
        pagination=GRAPH_PAGES,
    ),
    Provider(
        name="microsoft_teams",
        display_name="Microsoft Teams",
        category=COMMUNICATION,
        auth_types=(OAUTH2,),
        env_prefix="MICROSOFT",
        own_hosts=MS_HOSTS,
        authorization_url=MS_AUTH,
        token_url=MS_TOKEN,
        default_scopes=("Team.ReadBasic.All", "offline_access"),
        supports_pkce=True,
        config_fields=(MS_TENANT,),
        rate_limits=GRAPH_TEAMS_LIMITS,
        health_check=MS_HEALTH,
        api_base_url=GRAPH_API,
        pagination=GRAPH_PAGES,
    ),
    Provider(
        name="slack",
        display_name="Slack",
        category=COMMUNICATION,
        auth_types=(OAUTH2,),
        env_prefix="SLACK",
        own_hosts=("slack.com",),
        authorization_url="https://slack.com/oauth/v2/authorize",
        token_url="https://slack.com/api/oauth.v2.access",
        default_scopes=("chat:write",),
        scope_separator=",",
        supports_pkce=False,  # PKCE would make the Slack app a public client
        rate_limits=SLACK_LIMITS,
        health_check=HealthCheck("https://slack.com/api/auth.test", success="json_ok"),
        api_base_url="https://slack.com/api",
        # the items key differs per method (`channels`, `members`, `messages`): pass items_key
        pagination=Pagination("token", param="cursor", next_field=("response_metadata", "next_cursor")),
        notes="Refresh tokens only with token rotation on; errors come as HTTP 200 with `ok: false`.",
    ),
    Provider(
        name="linkedin",
        display_name="LinkedIn",
        category=JOB_BOARD,
        auth_types=(OAUTH2,),
        env_prefix="LINKEDIN",
        own_hosts=("www.linkedin.com", "api.linkedin.com"),
        authorization_url="https://www.linkedin.com/oauth/v2/authorization",
        token_url="https://www.linkedin.com/oauth/v2/accessToken",
        default_scopes=("openid", "profile", "email"),
        supports_pkce=False,  # native apps only
        rate_limits=LINKEDIN_LIMITS,
        health_check=HealthCheck("https://api.linkedin.com/v2/userinfo"),
        api_base_url="https://api.linkedin.com",
        pagination=Pagination(
            "offset",
            param="start",
            limit_param="count",
            page_size=50,
            items_key=("elements",),
            total_field=("paging", "total"),
        ),
        notes="60-day access tokens; refresh tokens only for approved partner apps.",
    ),
    Provider(
        name="indeed",
        display_name="Indeed",
        category=JOB_BOARD,
        auth_types=(OAUTH2,),
        env_prefix="INDEED",
        own_hosts=("secure.indeed.com", "apis.indeed.com"),
        authorization_url="https://secure.indeed.com/oauth/v2/authorize",
        token_url="https://apis.indeed.com/oauth/v2/tokens",
        default_scopes=("email", "offline_access", "employer_access"),
        supports_pkce=False,  # unconfirmed: enable with config.use_pkce
        rate_limits=(RateLimit(5, 1, source=UNDOCUMENTED),),
        health_check=HealthCheck("https://secure.indeed.com/v2/api/userinfo"),
        api_base_url="https://apis.indeed.com",
    ),
    Provider(
        name="glassdoor",
        display_name="Glassdoor",
        category=JOB_BOARD,
        auth_types=(API_KEY,),
        config_fields=(ConfigField("partner_id", required_for=(API_KEY,), help="Glassdoor partner id"),),
        rate_limits=(RateLimit(1, 1, source=UNDOCUMENTED),),
        health_check=HealthCheck(success="none", auth="query", note="no public API confirmed: reported degraded"),
        notes="Partner id and key are sent as query parameters.",
    ),
    Provider(
        name="bamboohr",
        display_name="BambooHR",
        category=HRIS,
        auth_types=(API_KEY, OAUTH2),
        env_prefix="BAMBOOHR",
        own_hosts=("*.bamboohr.com",),
        authorization_url="https://{company_domain}.bamboohr.com/authorize.php?request=authorize",
        token_url="https://{company_domain}.bamboohr.com/token.php?request=token",
        default_scopes=("offline_access",),
        config_fields=(
            ConfigField(
                "company_domain",
                required_for=(API_KEY, OAUTH2),
                help="the subdomain of <company>.bamboohr.com",
            ),
        ),
        rate_limits=BAMBOOHR_LIMITS,
        health_check=HealthCheck(
            "https://api.bamboohr.com/api/gateway.php/{company_domain}/v1/meta/fields", auth="basic_api_key"
        ),
        api_base_url="https://api.bamboohr.com/api/gateway.php/{company_domain}/v1",
        notes="API key as the Basic-auth username, password `x`. OAuth for partners only.",
    ),
    Provider(
        name="workday",
        display_name="Workday",
        category=HRIS,
        auth_types=(OAUTH2, API_KEY, SAML),
        env_prefix="WORKDAY",
        own_hosts=("*.myworkday.com", "*.workday.com"),
        authorization_url="https://{auth_domain}/{tenant}/authorize",
        token_url="https://{token_domain}/ccx/oauth2/{tenant}/token",
        token_auth_method=CLIENT_SECRET_BASIC,
        config_fields=(
            ConfigField("tenant", required_for=(OAUTH2, API_KEY, SAML), help="Workday tenant name"),
            ConfigField("auth_domain", required_for=(OAUTH2,), help="host of the authorization endpoint"),
            ConfigField("token_domain", required_for=(OAUTH2,), help="host of the token endpoint"),
            ConfigField("api_domain", help="host of the REST API, e.g. wd2-impl-services1.workday.com"),
            ConfigField("health_check_url", URL, help="a cheap authenticated GET, e.g. reading one worker"),
            *SAML_IDP_FIELDS,
        ),
        # REST paths name the tenant: `staffing/v6/{tenant}/workers` (filled by the client)
        api_base_url="https://{api_domain}/ccx/api",
        path_params=("tenant",),
        pagination=Pagination(
            "offset", param="offset", limit_param="limit", items_key=("data",), total_field=("total",)
        ),
        api_key_credentials=("username", "password"),
        rate_limits=(
            RateLimit(10, 1, burst=2, source="Workday does not publish REST quotas (tenant-specific). " + UNDOCUMENTED),
        ),
        health_check=HealthCheck("{health_check_url}", auth="basic", note="configure health_check_url"),
        notes=(
            "`api_key` auth here means Basic auth with `username`/`password` credentials. `saml` is Workday's "
            "SSO: the IdP metadata and its signing certificate are checked (no SAML bearer grant)."
        ),
    ),
    Provider(
        name="rippling",
        display_name="Rippling",
        category=HRIS,
        auth_types=(API_KEY, OAUTH2),
        env_prefix="RIPPLING",
        own_hosts=("app.rippling.com", "api.rippling.com"),
        authorization_url="https://app.rippling.com/apps/PLATFORM/{app_name}/authorize",
        token_url="https://api.rippling.com/api/o/token/",
        config_fields=(ConfigField("app_name", required_for=(OAUTH2,), help="your Rippling app's name"),),
        rate_limits=(
            RateLimit(
                5, 1, source="developer.rippling.com: limits not published as figures; 429 is honoured. " + UNDOCUMENTED
            ),
        ),
        health_check=HealthCheck("https://api.rippling.com/platform/api/me"),
        api_base_url="https://api.rippling.com",
        notes="API token sent as Bearer; OAuth for app partners.",
    ),
    Provider(
        name="docusign",
        display_name="DocuSign",
        category=E_SIGNATURE,
        auth_types=(OAUTH2, JWT),
        env_prefix="DOCUSIGN",
        own_hosts=("account.docusign.com", "account-d.docusign.com"),
        authorization_url="https://{account_domain}/oauth/auth",
        token_url="https://{account_domain}/oauth/token",
        default_scopes=("signature", "extended"),
        supports_pkce=True,
        token_auth_method=CLIENT_SECRET_BASIC,
        config_fields=(
            ConfigField(
                "account_domain",
                default="account.docusign.com",
                help="account.docusign.com, or account-d.docusign.com for the demo environment",
            ),
            ConfigField("client_id", required_for=(JWT,), help="integration key"),
            ConfigField("user_id", required_for=(JWT,), help="the impersonated user's id (JWT grant)"),
            ConfigField("account_id", help="the DocuSign account the API client uses; else the user's default"),
        ),
        rate_limits=DOCUSIGN_LIMITS,
        health_check=HealthCheck("https://{account_domain}/oauth/userinfo"),
        jwt=JwtGrant(
            token_url="https://{account_domain}/oauth/token",
            issuer="{client_id}",
            subject="{user_id}",
            audience="{account_domain}",
            default_scopes=("signature", "impersonation"),
            consent_url="https://{account_domain}/oauth/auth",
            error_hints={
                "consent_required": (
                    "consent is missing: open the consent URL shown on the integration, sign in as the "
                    "impersonated user (or an administrator granting it for the organization), allow access, "
                    "then mint a token again"
                ),
            },
        ),
        # The REST API lives on the account's own server (`https://na3.docusign.net`): read
        # from userinfo, kept to DocuSign's hosts, `{account_id}` filled in paths.
        userinfo_url="https://{account_domain}/oauth/userinfo",
        api_base_source="userinfo_accounts",
        api_base_suffix="/restapi",
        api_hosts=("*.docusign.net", "*.docusign.com"),
        path_params=("account_id",),
        pagination=Pagination("next_link", next_field=("nextUri",)),
        notes="The JWT grant has no refresh token: a new token is minted from the private key.",
    ),
    Provider(
        name="hellosign",
        display_name="HelloSign / Dropbox Sign",
        category=E_SIGNATURE,
        auth_types=(API_KEY, OAUTH2),
        env_prefix="HELLOSIGN",
        own_hosts=("app.hellosign.com", "api.hellosign.com"),
        authorization_url="https://app.hellosign.com/oauth/authorize",
        token_url="https://app.hellosign.com/oauth/token",
        refresh_url="https://app.hellosign.com/oauth/token?refresh",
        rate_limits=HELLOSIGN_LIMITS,
        health_check=HealthCheck("https://api.hellosign.com/v3/account", auth="basic_api_key"),
        api_base_url="https://api.hellosign.com/v3",
        pagination=Pagination("page", param="page", total_field=("list_info", "num_pages")),
        notes="API key as the Basic-auth username.",
    ),
    Provider(
        name="custom",
        display_name="Custom (any standards-compliant service)",
        category=COMMUNICATION,
        auth_types=(OAUTH2, API_KEY, JWT, SAML),
        env_prefix="",
        authorization_url="{authorization_url}",
        token_url="{token_url}",
        supports_pkce=True,
        config_fields=(
            ConfigField("authorization_url", URL, required_for=(OAUTH2,), help="the authorization endpoint"),
            ConfigField("token_url", URL, required_for=(OAUTH2, JWT), help="the token endpoint"),
            ConfigField("client_id", required_for=(OAUTH2,), help="OAuth client id"),
            ConfigField("scopes", LIST, help="scopes to request"),
            # shared by the JWT and the SAML bearer grants
            ConfigField(
                "issuer", TEXT, required_for=(JWT,), help="jwt: the assertion's `iss`; saml: the assertion's Issuer"
            ),
            ConfigField(
                "subject", TEXT, help="jwt: the assertion's `sub` (default: the issuer); saml: the NameID acted for"
            ),
            ConfigField("audience", TEXT, help="the assertion's audience (`aud` / Audience); default: the token URL"),
            ConfigField("key_id", TEXT, help="jwt: the `kid` header naming the signing key"),
            ConfigField("algorithm", choices=JWT_ALGORITHMS, help="jwt: RS256 for an RSA key, ES256 for P-256, ..."),
            ConfigField("extra_claims", OBJECT, help="jwt: further claims (not iss, sub, aud, iat, exp, nbf, jti)"),
            ConfigField("use_pkce", BOOL, default=True, help="PKCE (S256); default true"),
            ConfigField(
                "token_auth_method",
                default=CLIENT_SECRET_POST,
                choices=TOKEN_AUTH_METHODS,
                help="client_secret_post (default) or client_secret_basic",
            ),
            ConfigField("health_check_url", URL, help="a GET that must answer 2xx with the credential"),
            ConfigField("api_base_url", URL, help="the REST API's base URL, for the provider client and proxy"),
            ConfigField("category", choices=CATEGORIES, default=COMMUNICATION, help="how to file it"),
            *SAML_IDP_FIELDS,
            *(f for f in SAML_BEARER_FIELDS if f.name not in {"issuer", "subject", "audience"}),
        ),
        api_key_credentials=(),
        api_key_alternatives=("api_key", "token"),
        rate_limits=(
            RateLimit(10, 1, burst=2, source="A custom service: set config.rate_limit to its documented quota."),
        ),
        health_check=HealthCheck("{health_check_url}", note="configure health_check_url"),
        jwt=JwtGrant(token_url="{token_url}", issuer="{issuer}", subject="{subject}", scope_in="form"),
        notes=(
            "credentials: client_secret (OAuth2, optional for public PKCE clients), api_key/token (Bearer), "
            "private_key (jwt; client_secret with HS256); saml: IdP metadata, and with token_url the SAML "
            "bearer grant (private_key + certificate)."
        ),
        api_base_url="{api_base_url}",
    ),
)

PROVIDERS: dict[str, Provider] = {provider.name: provider for provider in _CATALOGUE}
PROVIDER_CHOICES = [(provider.name, provider.display_name) for provider in _CATALOGUE]


def get_provider(name: str) -> Provider | None:
    return PROVIDERS.get(name)


def provider_list() -> list[Provider]:
    return list(_CATALOGUE)
