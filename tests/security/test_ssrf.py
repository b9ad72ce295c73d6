"""SSRF: every user-supplied URL the service fetches is refused when it points inside.

One table of hostile URLs, applied to every place a user supplies a URL that we fetch:
webhook targets (create and update) and an integration's endpoints (custom `token_url`,
`authorization_url`, `health_check_url`; hosts shaped by config such as Workday's
`token_domain`), at create and update; then the connect-time checks (DNS rebinding) and
redirects, which are never followed.
"""

from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError

from common.ssrf import validate_public_url
from integrations.models import Integration
from integrations.services import integration_create
from tests.api_errors import error_detail, error_fields, error_text, field_errors
from tests.integrations.oauth_helpers import token_body
from tests.webhooks.receiver import Reply
from webhooks.models import Webhook
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

HOSTILE = {
    "decimal loopback": "http://2130706433/x",
    "hex loopback": "http://0x7f000001/x",
    "octal loopback": "http://017700000001/x",
    "dotted octal loopback": "http://0177.0.0.1/x",
    "short loopback": "http://127.1/x",
    "IPv6-mapped loopback": "http://[::ffff:127.0.0.1]/x",
    "IPv6-mapped metadata": "http://[::ffff:a9fe:a9fe]/x",
    "unspecified IPv4": "http://0.0.0.0/x",
    "unspecified IPv6": "http://[::]/x",
    "IPv6 loopback": "http://[::1]/x",
    "localhost": "http://localhost:8000/x",
    "name resolving to loopback": "https://loopback.attacker.test/x",
    "name resolving to metadata": "http://metadata.attacker.test/latest/meta-data/",
    "link-local metadata": "http://169.254.169.254/latest/meta-data/iam/",
    "private network": "http://10.0.0.1/x",
    "credentials in the URL": "https://user:pass@public.partner.test/x",
    "credentials hiding the host": "https://public.partner.test@127.0.0.1/x",
    "not http": "file:///etc/passwd",
    "gopher": "gopher://127.0.0.1:6379/_INFO",
}
PUBLIC = "https://public.partner.test/x"


@pytest.mark.parametrize("url", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_shared_check_refuses(fake_dns, url):
    with pytest.raises(ValidationError):
        validate_public_url(url, allow_private=False)


def test_the_shared_check_accepts_a_public_name(fake_dns):
    validate_public_url(PUBLIC, allow_private=False)


# --- webhooks ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", HOSTILE.values(), ids=HOSTILE.keys())
def test_webhook_create_refuses(strict_urls, fake_dns, api_client, url):
    response = api_client.post("/api/integrations/webhooks/", {"name": "x", "url": url, "events": ["*"]}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "url" in error_fields(response)
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("url", HOSTILE.values(), ids=HOSTILE.keys())
def test_webhook_update_refuses_and_keeps_the_url(strict_urls, fake_dns, api_client, organization, url):
    webhook = webhook_create(organization=organization, name="x", url=PUBLIC, events=["*"])
    for method in ("patch", "put"):
        response = getattr(api_client, method)(
            f"/api/integrations/webhooks/{webhook.pk}/", {"name": "x", "url": url, "events": ["*"]}, format="json"
        )
        assert response.status_code == HTTPStatus.BAD_REQUEST
    webhook.refresh_from_db()
    assert webhook.url == PUBLIC


def test_webhook_delivery_does_not_follow_redirects_inside(organization, receiver):
    """A public receiver answering 302 to an internal address does not make us go there."""
    from webhooks import tasks
    from webhooks.models import WebhookLog
    from webhooks.services import trigger_event

    receiver.default = Reply(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    webhook_create(organization=organization, name="x", url=receiver.url, events=["*"], retry_attempts=0)
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    assert len(receiver.requests) == 1
    log = WebhookLog.objects.get()
    assert log.success is False and log.response_status == HTTPStatus.FOUND


# --- integrations ----------------------------------------------------------------------------

CUSTOM = {
    "authorization_url": "https://public.partner.test/authorize",
    "token_url": "https://public.partner.test/token",
    "client_id": "c",
    "health_check_url": "https://public.partner.test/me",
}
URL_KEYS = ["token_url", "authorization_url", "health_check_url"]


def _custom(api_client, config, auth_type="oauth2"):
    credentials = {"client_secret": "s"} if auth_type == "oauth2" else {"api_key": "k"}
    body = {"name": "idp", "provider": "custom", "auth_type": auth_type, "config": config, "credentials": credentials}
    return api_client.post("/api/integrations/", body, format="json")


def test_public_integration_endpoints_are_accepted(strict_urls, fake_dns, api_client):
    assert _custom(api_client, CUSTOM).status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("key", URL_KEYS)
@pytest.mark.parametrize("url", HOSTILE.values(), ids=HOSTILE.keys())
def test_custom_integration_endpoint_is_refused_at_create(strict_urls, fake_dns, api_client, key, url):
    response = _custom(api_client, {**CUSTOM, key: url})
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert f"config.{key}" in field_errors(response)
    assert not Integration.objects.exists()


@pytest.mark.parametrize("key", URL_KEYS)
def test_custom_integration_endpoint_is_refused_at_update(strict_urls, fake_dns, api_client, key):
    integration_id = _custom(api_client, CUSTOM).json()["id"]
    for url in HOSTILE.values():
        response = api_client.patch(
            f"/api/integrations/{integration_id}/", {"config": {**CUSTOM, key: url}}, format="json"
        )
        assert response.status_code == HTTPStatus.BAD_REQUEST, (url, response.content)
    assert Integration.objects.get().config[key] == CUSTOM[key]


def test_health_check_url_of_an_api_key_integration_is_checked_too(strict_urls, fake_dns, api_client):
    config = {"health_check_url": "http://169.254.169.254/latest/meta-data/"}
    response = _custom(api_client, config, auth_type="api_key")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "config.health_check_url" in field_errors(response)


@pytest.mark.parametrize(
    "domain", ["127.0.0.1", "localhost:8080", "169.254.169.254", "loopback.attacker.test", "[::1]"]
)
def test_hosts_shaped_by_config_are_checked(strict_urls, fake_dns, api_client, domain):
    """Workday's token URL is https://{token_domain}/...: the domain is user input too."""
    body = {
        "name": "wd",
        "provider": "workday",
        "auth_type": "oauth2",
        "config": {"tenant": "acme", "auth_domain": "public.partner.test", "token_domain": domain},
        "credentials": {},
    }
    response = api_client.post("/api/integrations/", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "config.token_domain" in field_errors(response)


def test_private_endpoints_allowed_with_the_setting(settings, fake_dns, api_client):
    settings.ALLOW_PRIVATE_URLS = True
    response = _custom(api_client, {**CUSTOM, "token_url": "http://127.0.0.1:9/token"})
    assert response.status_code == HTTPStatus.CREATED


# --- connect time ------------------------------------------------------------------------------


def _authorized_custom(organization, token_url):
    integration = integration_create(
        organization=organization,
        name="idp",
        provider="custom",
        auth_type="oauth2",
        config={**CUSTOM, "token_url": token_url},
        credentials={"client_secret": "s"},
    )
    integration.credentials = {**integration.credentials, "access_token": "a", "refresh_token": "r"}
    integration.status = Integration.Status.ACTIVE
    integration.save()
    return integration


def test_token_endpoint_turned_private_is_refused_at_connect_time(settings, api_client, organization, receiver):
    """Saved while allowed (or its DNS changed since): the token request never connects."""
    settings.ALLOW_PRIVATE_URLS = True
    integration = _authorized_custom(organization, receiver.url)
    settings.ALLOW_PRIVATE_URLS = False
    response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "public" in error_detail(response)
    assert receiver.requests == []
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "a"


def test_token_endpoint_dns_rebinding_is_refused(settings, fake_dns, monkeypatch, api_client, organization, receiver):
    """Checked while the name resolved to a public address; it resolves to loopback at connect time."""
    port = receiver.server.server_address[1]
    # Saved while http:// was allowed (a plain-http test receiver); strict at connect time.
    settings.ALLOW_PRIVATE_URLS = True
    integration = _authorized_custom(organization, f"http://public.partner.test:{port}/token")
    settings.ALLOW_PRIVATE_URLS = False
    fake_dns["public.partner.test"] = "127.0.0.1"
    response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert receiver.requests == []


def test_token_endpoint_redirect_is_not_followed(settings, api_client, organization, receiver):
    settings.ALLOW_PRIVATE_URLS = True
    receiver.default = Reply(status=307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    integration = _authorized_custom(organization, receiver.url)
    response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code in {HTTPStatus.BAD_REQUEST, HTTPStatus.BAD_GATEWAY}
    assert len(receiver.requests) == 1
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "a"


def test_token_endpoint_reachable_when_allowed(settings, api_client, organization, receiver):
    """The control: the same local endpoint works when private URLs are allowed."""
    settings.ALLOW_PRIVATE_URLS = True
    receiver.default = Reply(body=token_body(access="fresh").encode(), headers={"Content-Type": "application/json"})
    integration = _authorized_custom(organization, receiver.url)
    response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code == HTTPStatus.OK, response.content
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "fresh"


def test_authorization_url_is_never_fetched_by_the_server(settings, api_client, organization, receiver):
    """The authorization URL is for the user's browser; starting the flow makes no request."""
    settings.ALLOW_PRIVATE_URLS = True
    integration = _authorized_custom(organization, receiver.url)
    response = api_client.get(f"/api/integrations/{integration.pk}/oauth/authorize/")
    assert response.status_code == HTTPStatus.OK
    assert receiver.requests == []


@pytest.mark.parametrize("field", ["token_url", "authorization_url", "health_check_url"])
def test_integration_endpoints_must_be_https_unless_private_urls_are_allowed(settings, api_client, fake_dns, field):
    """Tokens, codes and client secrets are sent to these URLs: never in clear text."""
    settings.ALLOW_PRIVATE_URLS = False
    config = {
        "authorization_url": "https://public.partner.test/authorize",
        "token_url": "https://public.partner.test/token",
        "health_check_url": "https://public.partner.test/health",
        "client_id": "own-client",
    }
    config[field] = config[field].replace("https://", "http://")
    body = {"name": "plain", "provider": "custom", "auth_type": "oauth2", "config": config}
    response = api_client.post(
        "/api/integrations/", {**body, "credentials": {"client_secret": "s3cr3t"}}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "https" in error_text(response)
    config[field] = config[field].replace("http://", "https://")
    response = api_client.post(
        "/api/integrations/", {**body, "credentials": {"client_secret": "s3cr3t"}}, format="json"
    )
    assert response.status_code == HTTPStatus.CREATED, response.json()
