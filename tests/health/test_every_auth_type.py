"""Every (provider, auth type) pair of the catalogue reaches `healthy` through a real check.

Each case builds a valid integration through the services (`integration_create`; OAuth2
tokens stored by `oauth_store_tokens`, as the callback does; JWT tokens minted from a real
RSA key; SAML IdP metadata with a real certificate), mocks only the provider's HTTP with
`responses` (the check URL; the token endpoint of a JWT grant; the IdP's metadata URL) and
runs `health_check_now` (the check and `health_record_results`).

The one pair that cannot be healthy is an explicit exemption, asserted below: Glassdoor's
`api_key` has no check (`success="none"`: no public API confirmed) and is `degraded`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import responses
from responses import matchers

from health.checks import DEGRADED, HEALTHY
from health.services import health_check_now
from integrations import providers
from integrations.models import ConnectionIssue, Integration
from integrations.oauth.client import TokenSet
from integrations.oauth.flows import oauth_store_tokens
from integrations.services import integration_create
from tests.integrations.grants.conftest import DOCUSIGN_DEMO, DOCUSIGN_TOKEN_URL, docusign_jwt, google_jwt
from tests.integrations.grants.keys import GOOGLE_TOKEN_URL, rsa_pem
from tests.integrations.saml_helpers import IDP_ENTITY_ID, key_pair, metadata_xml

pytestmark = pytest.mark.django_db

ACCESS_TOKEN = "stored-access-token-6f1d"
MINTED = "minted-access-token-2b7c"
API_KEY = "api-key-value-93ac"
METADATA_URL = "https://idp.example.test/app/metadata"
WORKDAY_CHECK = "https://wd2-impl-services1.workday.com/ccx/api/v1/acme/workers?limit=1"
CUSTOM_CHECK = "https://api.example.com/v1/me"
CUSTOM_TOKEN_URL = "https://auth.example.com/oauth/token"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Case:
    #: makes the integration (through the services) from the organization
    build: Callable[..., Integration]
    #: the provider's check URL, answered 200 with `answer`
    check_url: str = ""
    #: the Authorization header the check must send
    authorization: str = ""
    answer: dict = field(default_factory=lambda: {"id": "me"})
    #: a token endpoint answering the JWT grant
    token_url: str = ""
    #: the IdP metadata URL answering valid metadata
    metadata_url: str = ""


def oauth2(provider: str, config: dict | None = None, credentials: dict | None = None):
    """An OAuth2 integration authorized as the callback leaves it: tokens stored, `active`."""

    def build(organization) -> Integration:
        integration = integration_create(
            organization=organization,
            name=f"{provider} oauth2",
            provider=provider,
            auth_type="oauth2",
            config=config or {},
            credentials=credentials or {},
        )
        assert integration.status == Integration.Status.PENDING  # never authorized yet
        info = providers.get_provider(provider)
        scopes = (config or {}).get("scopes") or list(info.default_scopes)
        tokens = TokenSet(
            access_token=ACCESS_TOKEN,
            refresh_token="refresh-" + ACCESS_TOKEN,
            token_type="Bearer",
            scope=info.scope_separator.join(scopes),  # everything configured was granted
            expires_in=3600,
        )
        return oauth_store_tokens(integration=integration, tokens=tokens, authorized=True)

    return build


def api_key(provider: str, config: dict | None = None, credentials: dict | None = None):
    def build(organization) -> Integration:
        return integration_create(
            organization=organization,
            name=f"{provider} api_key",
            provider=provider,
            auth_type="api_key",
            config=config or {},
            credentials=credentials or {"api_key": API_KEY},
        )

    return build


def saml(provider: str, config: dict | None = None):
    def build(organization) -> Integration:
        return integration_create(
            organization=organization,
            name=f"{provider} saml",
            provider=provider,
            auth_type="saml",
            config={"idp_metadata_url": METADATA_URL, "idp_entity_id": IDP_ENTITY_ID, **(config or {})},
            credentials={},
        )

    return build


def custom_jwt(organization) -> Integration:
    return integration_create(
        organization=organization,
        name="custom jwt",
        provider="custom",
        auth_type="jwt",
        config={
            "token_url": CUSTOM_TOKEN_URL,
            "issuer": "acme-hiring",
            "key_id": "key-1",
            "health_check_url": CUSTOM_CHECK,
        },
        credentials={"private_key": rsa_pem()},
    )


CUSTOM_OAUTH = {
    "authorization_url": "https://auth.example.com/oauth/authorize",
    "token_url": CUSTOM_TOKEN_URL,
    "client_id": "acme-client",
    "scopes": ["read"],
    "health_check_url": CUSTOM_CHECK,
}
GOOGLE_CALENDAR_CHECK = "https://www.googleapis.com/calendar/v3/users/me/calendarList/primary"
GMAIL_CHECK = "https://gmail.googleapis.com/gmail/v1/users/me/profile"
GRAPH_CHECK = "https://graph.microsoft.com/v1.0/me"
BAMBOOHR_CHECK = "https://api.bamboohr.com/api/gateway.php/acmeco/v1/meta/fields"
RIPPLING_CHECK = "https://api.rippling.com/platform/api/me"
HELLOSIGN_CHECK = "https://api.hellosign.com/v3/account"
WORKDAY_OAUTH = {
    "tenant": "acme",
    "auth_domain": "impl.workday.com",
    "token_domain": "wd2-impl-services1.workday.com",
    "health_check_url": WORKDAY_CHECK,
}

#: every catalogue pair but the exemptions: how it is built and what its check must see
HEALTHY_CASES: dict[tuple[str, str], Case] = {
    ("google_calendar", "oauth2"): Case(oauth2("google_calendar"), GOOGLE_CALENDAR_CHECK, bearer(ACCESS_TOKEN)),
    ("google_calendar", "jwt"): Case(
        lambda organization: google_jwt(organization, "google_calendar"),
        GOOGLE_CALENDAR_CHECK,
        bearer(MINTED),
        token_url=GOOGLE_TOKEN_URL,
    ),
    ("gmail", "oauth2"): Case(oauth2("gmail"), GMAIL_CHECK, bearer(ACCESS_TOKEN)),
    ("gmail", "jwt"): Case(
        lambda organization: google_jwt(organization, "gmail"), GMAIL_CHECK, bearer(MINTED), token_url=GOOGLE_TOKEN_URL
    ),
    ("microsoft_outlook", "oauth2"): Case(
        oauth2("microsoft_outlook", {"tenant": "common"}), GRAPH_CHECK, bearer(ACCESS_TOKEN)
    ),
    ("outlook_mail", "oauth2"): Case(oauth2("outlook_mail", {"tenant": "common"}), GRAPH_CHECK, bearer(ACCESS_TOKEN)),
    ("microsoft_teams", "oauth2"): Case(
        oauth2("microsoft_teams", {"tenant": "common"}), GRAPH_CHECK, bearer(ACCESS_TOKEN)
    ),
    ("slack", "oauth2"): Case(
        oauth2("slack"), "https://slack.com/api/auth.test", bearer(ACCESS_TOKEN), answer={"ok": True, "team": "acme"}
    ),
    ("linkedin", "oauth2"): Case(oauth2("linkedin"), "https://api.linkedin.com/v2/userinfo", bearer(ACCESS_TOKEN)),
    ("indeed", "oauth2"): Case(oauth2("indeed"), "https://secure.indeed.com/v2/api/userinfo", bearer(ACCESS_TOKEN)),
    ("bamboohr", "api_key"): Case(
        api_key("bamboohr", {"company_domain": "acmeco"}), BAMBOOHR_CHECK, basic(API_KEY, "x")
    ),
    ("bamboohr", "oauth2"): Case(
        oauth2("bamboohr", {"company_domain": "acmeco"}), BAMBOOHR_CHECK, bearer(ACCESS_TOKEN)
    ),
    ("workday", "oauth2"): Case(oauth2("workday", WORKDAY_OAUTH), WORKDAY_CHECK, bearer(ACCESS_TOKEN)),
    ("workday", "api_key"): Case(
        api_key(
            "workday",
            {"tenant": "acme", "health_check_url": WORKDAY_CHECK},
            {"username": "isu_ats", "password": "isu-password-77"},
        ),
        WORKDAY_CHECK,
        basic("isu_ats", "isu-password-77"),
    ),
    ("workday", "saml"): Case(saml("workday", {"tenant": "acme"}), metadata_url=METADATA_URL),
    ("rippling", "api_key"): Case(api_key("rippling"), RIPPLING_CHECK, bearer(API_KEY)),
    ("rippling", "oauth2"): Case(oauth2("rippling", {"app_name": "acme-ats"}), RIPPLING_CHECK, bearer(ACCESS_TOKEN)),
    ("docusign", "oauth2"): Case(
        oauth2("docusign"), "https://account.docusign.com/oauth/userinfo", bearer(ACCESS_TOKEN), answer={"sub": "u"}
    ),
    ("docusign", "jwt"): Case(
        docusign_jwt,
        f"https://{DOCUSIGN_DEMO}/oauth/userinfo",
        bearer(MINTED),
        answer={"sub": "u"},
        token_url=DOCUSIGN_TOKEN_URL,
    ),
    ("hellosign", "api_key"): Case(api_key("hellosign"), HELLOSIGN_CHECK, basic(API_KEY, "x")),
    ("hellosign", "oauth2"): Case(oauth2("hellosign"), HELLOSIGN_CHECK, bearer(ACCESS_TOKEN)),
    ("custom", "oauth2"): Case(
        oauth2("custom", CUSTOM_OAUTH, {"client_secret": "custom-client-secret-5e1"}),
        CUSTOM_CHECK,
        bearer(ACCESS_TOKEN),
    ),
    ("custom", "api_key"): Case(api_key("custom", {"health_check_url": CUSTOM_CHECK}), CUSTOM_CHECK, bearer(API_KEY)),
    ("custom", "jwt"): Case(custom_jwt, CUSTOM_CHECK, bearer(MINTED), token_url=CUSTOM_TOKEN_URL),
    ("custom", "saml"): Case(saml("custom"), metadata_url=METADATA_URL),
}
#: pairs that have no check at all, each with the test that asserts why
EXEMPT = {("glassdoor", "api_key"): "test_glassdoor_api_key_has_no_check_and_is_degraded_not_healthy"}


def catalogue_pairs() -> set[tuple[str, str]]:
    return {(provider.name, auth_type) for provider in providers.provider_list() for auth_type in provider.auth_types}


def test_the_cases_are_exactly_the_catalogue_pairs():
    """A provider or auth type added to the catalogue must get a case here (or an exemption)."""
    assert set(HEALTHY_CASES).isdisjoint(EXEMPT)
    assert set(HEALTHY_CASES) | set(EXEMPT) == catalogue_pairs()
    assert len(catalogue_pairs()) == 26
    assert all(name in globals() for name in EXEMPT.values())


def open_issues(integration) -> list[str]:
    return list(
        ConnectionIssue.objects.filter(integration=integration)
        .exclude(status=ConnectionIssue.Status.RESOLVED)
        .values_list("kind", flat=True)
    )


@pytest.mark.parametrize(
    ("provider", "auth_type"), sorted(HEALTHY_CASES), ids=[f"{p}-{a}" for p, a in sorted(HEALTHY_CASES)]
)
def test_every_catalogue_auth_type_reaches_healthy(organization, provider, auth_type):
    case = HEALTHY_CASES[(provider, auth_type)]
    integration = case.build(organization)
    assert (integration.provider, integration.auth_type, integration.status) == (provider, auth_type, "active")
    with responses.RequestsMock() as mock:  # every registered call must happen
        if case.token_url:
            mock.post(
                case.token_url,
                body=json.dumps({"access_token": MINTED, "token_type": "Bearer", "expires_in": 3600}),
                content_type="application/json",
            )
        if case.metadata_url:
            cert = key_pair(valid_for=timedelta(days=365))
            mock.get(case.metadata_url, body=metadata_xml(certs=[cert.cert_b64]), content_type="application/xml")
        if case.check_url:
            mock.get(
                case.check_url,
                json=case.answer,
                match=[matchers.header_matcher({"Authorization": case.authorization})],
            )
        record = health_check_now(integration=integration)
    assert (record.status, record.error) == (HEALTHY, "")
    assert integration.health_status == Integration.HealthStatus.HEALTHY
    assert open_issues(integration) == []


def test_glassdoor_api_key_has_no_check_and_is_degraded_not_healthy(organization):
    """The exemption: no public Glassdoor API is confirmed, so the catalogue declares no check
    (`success="none"`) and the honest result is `degraded`, "No health check available"."""
    assert providers.get_provider("glassdoor").health_check.success == "none"
    integration = api_key("glassdoor", {"partner_id": "p-1234"})(organization)
    assert integration.status == Integration.Status.ACTIVE
    with responses.RequestsMock():  # no request at all
        record = health_check_now(integration=integration)
    assert record.status == DEGRADED
    assert record.error.startswith("No health check available for Glassdoor")
    assert integration.health_status == Integration.HealthStatus.DEGRADED
    assert open_issues(integration) == []
