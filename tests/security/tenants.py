"""Two organizations with one of everything, and the API's routes read from the schema.

Shared by the tenant-isolation matrix and the secret-leak scan. Routes come from
/api/schema/ (so routes added later are covered without editing the tests); each path
parameter is filled from `PARAMETERS`, and a route whose parameter is unknown there makes
the tests fail, asking for it to be added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus

import responses
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from integrations.models import ConnectionIssue, Integration, InterviewEvent
from integrations.services import integration_create
from organizations.services import api_key_create
from tests.factories import OrganizationFactory
from webhooks.engine.loop import process
from webhooks.engine.store import claim_due
from webhooks.models import Delivery, Event, EventType, WebhookLog
from webhooks.services import event_type_create, webhook_create

PARAMETER = re.compile(r"\{(\w+)\}")
SENTINEL = "SENTINEL-7f3a9c"  # every secret the fixtures store contains this


@dataclass
class Tenant:
    slug: str
    organization: object = None
    api_key: object = None
    raw_key: str = ""
    integration: Integration | None = None
    oauth_integration: Integration | None = None
    webhook: object = None
    log: WebhookLog | None = None
    issue: ConnectionIssue | None = None
    event_type: EventType | None = None
    interview: InterviewEvent | None = None
    secrets: list[str] = field(default_factory=list)

    def identifiers(self) -> list[str]:
        """Strings that must never appear in another organization's responses."""
        return [
            str(self.organization.pk),
            self.slug,
            str(self.api_key.pk),
            self.api_key.prefix,
            str(self.integration.pk),
            self.integration.name,
            str(self.oauth_integration.pk),
            self.oauth_integration.name,
            str(self.webhook.pk),
            self.webhook.name,
            self.webhook.url,
            str(self.log.pk),
            self.log.message_id,
            str(self.issue.pk),
            self.issue.message,
            self.interview.interview_id,
            self.interview.title,
        ]


def make_tenant(slug: str) -> Tenant:
    tenant = Tenant(slug=slug)
    tenant.organization = OrganizationFactory(slug=slug)
    tenant.api_key, tenant.raw_key = api_key_create(organization=tenant.organization, name=f"{slug} key")
    secret = f"{SENTINEL}-{slug}"
    tenant.secrets = [
        f"{secret}-api-key",
        f"{secret}-client-secret",
        f"{secret}-access-token",
        f"{secret}-refresh-token",
        f"{secret}-header",
        tenant.raw_key,
    ]
    tenant.integration = integration_create(
        organization=tenant.organization,
        name=f"{slug} hr",
        provider="bamboohr",
        auth_type="api_key",
        config={"company_domain": slug},
        credentials={"api_key": f"{secret}-api-key"},
    )
    oauth = integration_create(
        organization=tenant.organization,
        name=f"{slug} idp",
        provider="custom",
        auth_type="oauth2",
        config={
            "authorization_url": f"https://idp.{slug}.test/authorize",
            "token_url": f"https://idp.{slug}.test/token",
            "client_id": f"{slug}-client",
            "api_base_url": f"https://api.{slug}.test/v1",
        },
        credentials={"client_secret": f"{secret}-client-secret"},
    )
    oauth.credentials = {
        **oauth.credentials,
        "access_token": f"{secret}-access-token",
        "refresh_token": f"{secret}-refresh-token",
    }
    oauth.status = Integration.Status.ACTIVE
    oauth.token_expires_at = timezone.now() + timedelta(hours=1)
    oauth.save()
    tenant.oauth_integration = oauth
    tenant.webhook = webhook_create(
        organization=tenant.organization,
        name=f"{slug} hook",
        url=f"https://hooks.{slug}.test/in",
        events=["*"],
        headers={"Authorization": f"Bearer {secret}-header", "X-Team": slug},
        integration=tenant.integration,
        # subscriber auth: an OAuth2 client secret, the token it gets, an mTLS private key
        auth={
            "type": "oauth2_client_credentials",
            "token_url": f"https://auth.{slug}.test/token",
            "client_id": f"{slug}-client",
            "client_secret": f"{secret}-subscriber-client-secret",
        },
        client_certificate=_client_certificate(slug),
    )
    key_pem = tenant.webhook.client_certificate.split("-----END CERTIFICATE-----\n")[-1]
    key_lines = [line for line in key_pem.splitlines() if not line.startswith("-----")]
    tenant.secrets += [tenant.webhook.secret, f"{secret}-subscriber-client-secret", f"{secret}-subscriber-token"]
    tenant.secrets += [key_pem, max(key_lines, key=len)]
    tenant.log = _deliver_once(tenant)
    tenant.event_type = event_type_create(
        organization=tenant.organization,
        name=f"custom.{slug.replace('-', '_')}_type",
        description=f"{slug} custom event",
        schema={"type": "object", "properties": {"team": {"type": "string", "const": slug}}},
    )
    now = timezone.now()
    tenant.issue = ConnectionIssue.objects.create(
        organization=tenant.organization,
        integration=oauth,
        kind=ConnectionIssue.Kind.CREDENTIALS_REJECTED,
        status=ConnectionIssue.Status.OPEN,
        message=f"{slug} idp refused the token",
        count=1,
        first_seen_at=now,
        last_seen_at=now,
        opened_at=now,
    )
    tenant.interview = InterviewEvent.objects.create(
        organization=tenant.organization,
        integration=oauth,
        interview_id=f"int-{slug}",
        provider_event_id=f"evt-{slug}",
        title=f"{slug} interview",
    )
    return tenant


def _client_certificate(slug: str) -> str:
    from tests.webhooks.subscriber_servers import issue, make_ca

    return issue(make_ca(), f"{slug}-client", server=False).pem


def _subscriber_token(tenant: Tenant) -> dict:
    token = next(s for s in tenant.secrets if s.endswith("-subscriber-token"))
    return {"access_token": token, "token_type": "Bearer", "expires_in": 3600}


def _deliver_once(tenant: Tenant) -> WebhookLog:
    event = Event.objects.create(organization=tenant.organization, type="job.created", payload={"job": tenant.slug})
    delivery = Delivery.objects.create(
        organization=tenant.organization, event=event, webhook=tenant.webhook, next_attempt_at=timezone.now()
    )
    from urllib.parse import urlsplit

    from tests.webhooks.hosted import hosted

    # The receiver is a real local HTTPS server under the webhook's own name; the subscriber's
    # token endpoint (a third party's) is mocked.
    with hosted(str(urlsplit(tenant.webhook.url).hostname)) as receiver, responses.RequestsMock() as mocked:
        mocked.add(responses.POST, tenant.webhook.auth["token_url"], json=_subscriber_token(tenant))
        process(claim_due(limit=1, delivery_ids=[delivery.pk]))
        receiver.wait_for(1)
    return WebhookLog.objects.get(delivery=delivery)


#: the tenants' provider APIs (`oauth_integration`'s `api_base_url`), for the REST proxy
PROVIDER_API = re.compile(r"https://api\.[a-z]+\.test/v1/.*")
#: path parameters that name no object of a tenant (the proxy's provider path)
#: `interview_id` is the platform's id, scoped by the integration in the path (a PUT with any id
#: creates under its own integration): only the integration id varies
NON_OBJECT_PARAMETERS = frozenset({"path", "interview_id"})
#: GET routes that need a chat integration (docs/HIRING.md): the tenants' custom one is
#: refused with a 400 before any provider call; the walkers still check what they answer
NEEDS_A_CHAT_PROVIDER = ("/messages/channels/",)


def expected_read_status(template: str) -> int:
    return HTTPStatus.BAD_REQUEST if template.endswith(NEEDS_A_CHAT_PROVIDER) else HTTPStatus.OK


def mock_provider_apis(mocked: responses.RequestsMock) -> None:
    """Answer the proxy's calls to the tenants' provider APIs (nothing of ours in the body)."""
    for method in (responses.GET, responses.POST, responses.PUT, responses.PATCH, responses.DELETE):
        mocked.add(method, PROVIDER_API, json={"provider": "answer"})


# --- routes --------------------------------------------------------------------------------


def schema_operations(client: Client) -> list[tuple[str, str, dict]]:
    """(method, path template, operation) for every operation in /api/schema/."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def parameter_value(path: str, name: str, tenant: Tenant) -> str:
    """The tenant's object for a path parameter, chosen by the collection it follows."""
    segments = path.strip("/").split("/")
    collection = segments[segments.index("{" + name + "}") - 1]
    objects = {
        ("api-keys", "id"): tenant.api_key,
        ("integrations", "id"): tenant.oauth_integration,
        ("webhooks", "id"): tenant.webhook,
        ("logs", "log_id"): tenant.log,
        ("integration-issues", "id"): tenant.issue,
    }
    if (collection, name) == ("event-types", "name"):
        return tenant.event_type.name
    if (collection, name) == ("interviews", "interview_id"):  # the platform's id, not a pk
        return tenant.interview.interview_id
    if (collection, name) == ("provider", "provider"):
        return tenant.integration.provider
    if (collection, name) == ("proxy", "path"):  # a provider API path, not an object
        return "v1/me"
    if (collection, name) not in objects:
        raise LookupError(
            f"No test object for {{{name}}} after /{collection}/ in {path}: "
            "add one to tests/security/tenants.py:parameter_value so the route is covered."
        )
    return str(objects[(collection, name)].pk)


def fill(path: str, values: dict[str, str]) -> str:
    return PARAMETER.sub(lambda match: values[match.group(1)], path)


def api_routes_with_parameters() -> set[str]:
    """Every URL pattern under /api/ that captures a parameter, as the resolver knows it."""

    def join(prefix: str, route: str) -> str:  # as ResolverMatch.route joins them
        return prefix + (route[1:] if prefix and route.startswith("^") else route)

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, join(prefix, str(pattern.pattern)))
            elif isinstance(pattern, URLPattern):
                yield join(prefix, str(pattern.pattern))

    return {route for route in walk(get_resolver().url_patterns) if route.startswith("api/") and "(?P<" in route}


def body_text(response) -> str:
    """The answer's body as text, also for a streamed one (the REST proxy streams)."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()
