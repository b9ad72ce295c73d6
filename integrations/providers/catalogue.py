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
    JOB_BOARD,
    JWT,
    LIST,
    OAUTH2,
    SAML,
    TOKEN_AUTH_METHODS,
    URL,
    ConfigField,
    HealthCheck,
    Pagination,
    Provider,
)

GOOGLE_AUTH = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN = "https://oauth2.googleapis.com/token"
# Google issues a refresh token only for offline access, and re-issues it only with consent.
GOOGLE_PARAMS = {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}
MS_AUTH = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
MS_TOKEN = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
MS_TENANT = ConfigField("tenant", default="common", help="Entra tenant id or domain; `common` for multi-tenant apps")
MS_HEALTH = HealthCheck("https://graph.microsoft.com/v1.0/me")
MS_HOSTS = ("login.microsoftonline.com", "graph.microsoft.com")
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
        auth_types=(OAUTH2,),
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
        health_check=HealthCheck("https://www.googleapis.com/calendar/v3/users/me/calendarList/primary"),
        api_base_url="https://www.googleapis.com/calendar/v3",
        pagination=google_pages("items"),
    ),
    Provider(
        name="gmail",
        display_name="Gmail",
        category=COMMUNICATION,
        auth_types=(OAUTH2,),
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
        health_check=HealthCheck("https://gmail.googleapis.com/gmail/v1/users/me/profile"),
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
        health_check=HealthCheck("https://secure.indeed.com/v2/api/userinfo"),
        api_base_url="https://apis.indeed.com",
    ),
    Provider(
        name="glassdoor",
        display_name="Glassdoor",
        category=JOB_BOARD,
        auth_types=(API_KEY,),
        config_fields=(ConfigField("partner_id", required_for=(API_KEY,), help="Glassdoor partner id"),),
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
        ),
        # REST paths name the tenant: `staffing/v6/{tenant}/workers` (filled by the client)
        api_base_url="https://{api_domain}/ccx/api",
        path_params=("tenant",),
        pagination=Pagination(
            "offset", param="offset", limit_param="limit", items_key=("data",), total_field=("total",)
        ),
        api_key_credentials=("username", "password"),
        health_check=HealthCheck("{health_check_url}", auth="basic", note="configure health_check_url"),
        notes="`api_key` auth here means Basic auth with `username`/`password` credentials.",
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
        health_check=HealthCheck("https://{account_domain}/oauth/userinfo"),
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
            ConfigField("token_url", URL, required_for=(OAUTH2,), help="the token endpoint"),
            ConfigField("client_id", required_for=(OAUTH2,), help="OAuth client id"),
            ConfigField("scopes", LIST, help="scopes to request"),
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
        ),
        api_key_credentials=(),
        api_key_alternatives=("api_key", "token"),
        health_check=HealthCheck("{health_check_url}", note="configure health_check_url"),
        api_base_url="{api_base_url}",
        notes="credentials: client_secret (OAuth2, optional for public PKCE clients), or api_key/token (Bearer).",
    ),
)

PROVIDERS: dict[str, Provider] = {provider.name: provider for provider in _CATALOGUE}
PROVIDER_CHOICES = [(provider.name, provider.display_name) for provider in _CATALOGUE]


def get_provider(name: str) -> Provider | None:
    return PROVIDERS.get(name)


def provider_list() -> list[Provider]:
    return list(_CATALOGUE)
