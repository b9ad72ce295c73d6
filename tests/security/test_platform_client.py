"""The platform's shared OAuth app (`<PREFIX>_CLIENT_ID`/`_SECRET`) only ever reaches the
provider's own hosts (integrations/providers/hosts.py).

Generated from the catalogue: every provider with a shared app, every config key that shapes
an endpoint URL (Workday `auth_domain`/`token_domain`/`api_domain`/`health_check_url`,
DocuSign `account_domain`, BambooHR `company_domain`, ...). A key pointed at an attacker's
host is a 400 naming `config.client_id` at create and at update, and a row saved around the
services is refused at authorize, exchange and refresh with nothing sent; the provider's
own host works with the platform's client. A provider added later is covered as it is.
"""

from __future__ import annotations

import base64
import string
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
import responses

from health.checks import UNHEALTHY, check_integration
from integrations import providers
from integrations.models import Integration, OAuthState
from integrations.oauth.flows import hash_state, oauth_exchange_code
from integrations.oauth.tokens import oauth_refresh_token
from integrations.providers.hosts import confined_host, endpoint_urls, host_matches
from tests.api_errors import field_errors

pytestmark = pytest.mark.django_db

ATTACKER = "x.attacker.example"
PLATFORM_ID = "platform-id"
PLATFORM_SECRET = "PLATFORM-SECRET-9d1e"
SHARED = [p for p in providers.provider_list() if p.has_shared_oauth_app and p.supports_oauth2]


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _own_host(provider) -> str:
    pattern = provider.own_hosts[0]
    return "tenant1" + pattern[1:] if pattern.startswith("*.") else pattern


def _value(provider, name: str, host: str) -> str:
    """A value for config key `name` that points the endpoints it shapes at `host`."""
    spec = provider.config_field(name)
    if spec is not None and spec.kind == providers.URL:
        return f"https://{host}/ccx/api/v1/acme/workers"
    for template in provider.endpoint_templates():
        if urlsplit(template).netloc == "{" + name + "}":
            return host  # the whole host comes from the config
    return "acme"  # a path segment or a subdomain label


def _baseline(provider) -> dict:
    """A config for the OAuth flow with every endpoint on the provider's own host."""
    config = {}
    for spec in provider.all_config_fields():
        if providers.OAUTH2 in spec.required_for or any(
            spec.name in _placeholders(t) for t in provider.endpoint_templates()
        ):
            config[spec.name] = _value(provider, spec.name, _own_host(provider))
    return config


def _shaping_keys(provider) -> list[str]:
    keys = []
    for template in provider.endpoint_templates():
        keys += [name for name in _placeholders(template) if name not in keys]
    return keys


CASES = [(p.name, key) for p in SHARED for key in _shaping_keys(p)]


@pytest.fixture(autouse=True)
def platform_clients(settings):
    for provider in SHARED:
        setattr(settings, f"{provider.env_prefix}_CLIENT_ID", PLATFORM_ID)
        setattr(settings, f"{provider.env_prefix}_CLIENT_SECRET", PLATFORM_SECRET)
    settings.ALLOW_PRIVATE_URLS = True  # no DNS for the test hosts; the SSRF suite checks addresses


def _body(provider, config, name="probe"):
    return {"name": name, "provider": provider.name, "auth_type": "oauth2", "config": config, "credentials": {}}


def _leaked(calls) -> list[str]:
    return [call.request.url for call in calls if ATTACKER in (urlsplit(call.request.url).hostname or "")]


def test_the_generated_cases_cover_the_templated_hosts():
    names = {name for name, _ in CASES}
    assert {"workday", "docusign", "bamboohr"} <= names
    assert ("workday", "token_domain") in CASES and ("docusign", "account_domain") in CASES


@pytest.mark.parametrize("provider", SHARED, ids=lambda p: p.name)
def test_every_shared_app_declares_its_hosts_and_its_fixed_endpoints_are_on_them(provider):
    assert provider.own_hosts, f"{provider.name} has a shared OAuth app: declare own_hosts in the catalogue"
    for url in endpoint_urls(provider, _baseline(provider)):
        assert urlsplit(url).scheme == "https"
        assert host_matches(urlsplit(url).hostname, provider.own_hosts), url


@pytest.mark.parametrize(("name", "key"), CASES)
def test_an_attacker_host_needs_the_integrations_own_client(api_client, name, key):
    provider = providers.get_provider(name)
    config = {**_baseline(provider), key: _value(provider, key, ATTACKER)}
    attacker_reachable = any(ATTACKER == urlsplit(url).hostname for url in endpoint_urls(provider, config))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        created = api_client.post("/api/integrations/", _body(provider, config), format="json")
        ok = api_client.post("/api/integrations/", _body(provider, _baseline(provider), "ok"), format="json")
        assert ok.status_code == HTTPStatus.CREATED, ok.json()
        updated = api_client.patch(f"/api/integrations/{ok.json()['id']}/", {"config": config}, format="json")
        assert not outbound.calls
    if not attacker_reachable:  # e.g. BambooHR: the key is a label under bamboohr.com
        assert created.status_code == HTTPStatus.CREATED
        return
    for response in (created, updated):
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response["Content-Type"].startswith("application/json")
        assert "config.client_id" in field_errors(response)
    # With the integration's own app, the same config is fine.
    own = {**config, "client_id": "their-own-app"}
    mine = api_client.post(
        "/api/integrations/",
        {**_body(provider, own, "mine"), "credentials": {"client_secret": "theirs"}},
        format="json",
    )
    assert mine.status_code == HTTPStatus.CREATED, mine.json()


@pytest.mark.parametrize(("name", "key"), CASES)
def test_a_row_saved_around_the_services_is_refused_before_anything_is_sent(api_client, name, key):
    provider = providers.get_provider(name)
    created = api_client.post("/api/integrations/", _body(provider, _baseline(provider)), format="json")
    integration = Integration.objects.get(pk=created.json()["id"])
    start = api_client.get(f"/api/integrations/{integration.pk}/oauth/authorize/").json()
    config = {**_baseline(provider), key: _value(provider, key, ATTACKER)}
    if not any(ATTACKER == urlsplit(url).hostname for url in endpoint_urls(provider, config)):
        return
    Integration.objects.filter(pk=integration.pk).update(config=config)  # e.g. saved before the rule
    integration.refresh_from_db()
    integration.credentials = {"access_token": "a", "refresh_token": "r"}
    integration.save(update_fields=["credentials"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        authorize = api_client.get(f"/api/integrations/{integration.pk}/oauth/authorize/")
        assert authorize.status_code == HTTPStatus.BAD_REQUEST
        assert "config.client_id" in field_errors(authorize)
        assert "authorization_url" not in authorize.json() and PLATFORM_ID not in authorize.content.decode()
        with pytest.raises(Exception) as exchange:
            oauth_exchange_code(code="c", state=start["state"])
        assert "client_id" in str(exchange.value)
        with pytest.raises(Exception) as refresh:
            oauth_refresh_token(integration=integration, force=True)
        assert "client_id" in str(refresh.value)
        assert _leaked(outbound.calls) == [] and not outbound.calls


@pytest.mark.parametrize("provider", SHARED, ids=lambda p: p.name)
def test_the_providers_own_host_gets_the_platform_client(api_client, provider):
    created = api_client.post("/api/integrations/", _body(provider, _baseline(provider)), format="json")
    assert created.status_code == HTTPStatus.CREATED, created.json()
    start = api_client.get(f"/api/integrations/{created.json()['id']}/oauth/authorize/").json()
    authorize = urlsplit(start["authorization_url"])
    assert host_matches(authorize.hostname, provider.own_hosts)
    assert f"client_id={PLATFORM_ID}" in authorize.query
    token_url = provider.token_url.format_map(_baseline(provider))
    with responses.RequestsMock() as outbound:
        outbound.post(token_url.split("?")[0], json={"access_token": "at", "token_type": "Bearer"})
        oauth_exchange_code(code="the-code", state=start["state"])
        sent = outbound.calls[0].request
    basic = "Basic " + base64.b64encode(f"{PLATFORM_ID}:{PLATFORM_SECRET}".encode()).decode()
    assert sent.headers.get("Authorization") == basic or PLATFORM_SECRET in (sent.body or "")
    assert OAuthState.objects.get(state_hash=hash_state(start["state"])).used_at is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://evilworkday.com/x",
        "https://workday.com/x",  # the bare domain is not `*.workday.com`
        "https://a.workday.com.attacker.example/x",
        "https://a.workday.com:8443/x",
        "https://user@a.workday.com/x",
        "http://a.workday.com/x",
        "https://a.workday.com./x",
    ],
)
def test_look_alike_hosts_are_not_the_providers(url):
    assert confined_host(url, providers.get_provider("workday").own_hosts) is not None
    assert confined_host("https://wd2-impl.workday.com/x", providers.get_provider("workday").own_hosts) is None


def test_the_health_check_sends_no_platform_token_to_an_attacker_host(organization):
    workday = providers.get_provider("workday")
    integration = Integration.objects.create(
        organization=organization,
        name="wd",
        provider="workday",
        auth_type="oauth2",
        config={**_baseline(workday), "health_check_url": f"https://{ATTACKER}/steal"},
        credentials={"access_token": "platform-issued-token"},
        status=Integration.Status.ACTIVE,
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outbound:
        result = check_integration(integration)
        assert not outbound.calls
    assert result.status == UNHEALTHY
    assert "client_id" in result.error
