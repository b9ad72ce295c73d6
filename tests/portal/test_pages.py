"""Portal pages: the catalogue with schemas and examples, content filters through the same
validation as the API, usage by status class, and list pages in a constant number of queries."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from health.models import HealthCheck
from health.selectors import health_summary
from integrations.models import Integration, ProviderCall
from portal.selectors import health_summaries
from tests.factories import MembershipFactory, OrganizationFactory
from tests.integrations.factories import IntegrationFactory
from tests.integrations.test_issues_api import make_issue
from webhooks.models import Delivery, EventType, Webhook, WebhookLog
from webhooks.services import trigger_event
from webhooks.services.webhooks import webhook_create

pytestmark = pytest.mark.django_db


def _admin(organization=None) -> tuple[Client, object]:
    membership = MembershipFactory(role="admin", **({"organization": organization} if organization else {}))
    client = Client()
    client.force_login(membership.user)
    return client, membership.organization


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(captured.captured_queries)


def test_the_form_and_catalogue_show_schemas_examples_custom_types_and_deprecated_flags():
    client, organization = _admin()
    EventType.objects.create(
        organization=organization,
        name="custom.assessment.completed",
        description="An assessment finished.",
        schema={"type": "object", "properties": {"score_marker_xyz": {"type": "integer"}}},
        example={"score_marker_xyz": 93},
        deprecated=True,
    )
    EventType.objects.create(organization=OrganizationFactory(), name="custom.someone.elses", schema={})
    for page in ("/portal/webhooks/new/", "/portal/events/"):
        html = client.get(page).content.decode()
        assert html.count("<details") >= 17, page  # one per catalogue event at least
        assert "Schema and example of <code>application.created</code>" in html
        assert "&quot;$schema&quot;" in html or "&quot;type&quot;" in html  # a schema, escaped JSON
        assert "custom.assessment.completed" in html and "score_marker_xyz" in html and ": 93" in html
        assert "deprecated" in html and "custom.someone.elses" not in html
    webhook = webhook_create(
        organization=organization, name="c", url="https://e.example.com/in", events=["custom.assessment.completed"]
    )
    logs = client.get(f"/portal/webhooks/{webhook.pk}/logs/").content.decode()
    assert "<option >custom.assessment.completed</option>" in logs and "custom.someone.elses" not in logs


def test_a_filter_is_saved_shown_and_bad_filters_are_messages_not_errors():
    client, _ = _admin()
    base = {"name": "f", "url": "https://e.example.com/in", "events": ["job.created"]}
    for bad, message in (
        ('{"data.job.department": ', "Not valid JSON"),
        ('{"data.job.department": {"$nope": 1}}', "$nope"),
        ("[1, 2]", "filter"),
    ):
        response = client.post("/portal/webhooks/new/", {**base, "filter": bad})
        assert response.status_code == 400, bad
        html = response.content.decode()
        assert "was not saved" in html and message in html, bad
        assert bad.replace('"', "&quot;") in html  # what was typed stays in the textarea
    assert not Webhook.objects.exists()
    good = client.post("/portal/webhooks/new/", {**base, "filter": '{"data.job.department": {"$in": ["sales"]}}'})
    assert good.status_code == 302
    webhook = Webhook.objects.get()
    assert webhook.filter == {"data.job.department": {"$in": ["sales"]}}
    detail = client.get(good["Location"]).content.decode()
    assert "Content filter" in detail and "&quot;$in&quot;" in detail
    edit = client.get(f"/portal/webhooks/{webhook.pk}/edit/").content.decode()
    assert "&quot;data.job.department&quot;" in edit  # the form shows the current filter
    cleared = client.post(f"/portal/webhooks/{webhook.pk}/edit/", {**base, "filter": ""})
    assert cleared.status_code == 302
    webhook.refresh_from_db()
    assert webhook.filter is None


def _integrations(organization, count):
    now = timezone.now()
    for _ in range(count):
        name = f"i{uuid.uuid4().hex[:8]}"
        integration = IntegrationFactory(organization=organization, name=name, provider="rippling")
        for minutes, status in ((1, "healthy"), (2, "unhealthy"), (60 * 30, "healthy")):
            HealthCheck.objects.create(
                integration=integration,
                status=status,
                response_time_ms=100,
                checked_at=now - timedelta(minutes=minutes),
            )
        make_issue(integration)
        for status in (200, 201, 404, 503, None):
            ProviderCall.objects.create(
                organization=organization,
                integration=integration,
                method="GET",
                path="/x",
                endpoint="GET /x",
                status=status,
            )


def test_the_integrations_page_shows_usage_by_status_class_of_the_last_24_hours():
    client, organization = _admin()
    _integrations(organization, 1)
    ProviderCall.objects.filter(status=201).update(created_at=timezone.now() - timedelta(hours=25))
    html = client.get("/portal/integrations/").content.decode()
    assert "Calls in the last 24 h: <strong>4</strong>" in html
    assert "2xx:</span> 1" in html and "4xx:</span> 1" in html and "5xx:</span> 1" in html
    assert "no answer:</span> 1" in html
    assert "uptime 24 h: 50.0 %" in html and "credentials_rejected" in html


def test_the_integrations_page_makes_as_many_queries_for_five_integrations_as_for_one():
    client, organization = _admin()
    _integrations(organization, 1)
    one = _queries(client, "/portal/integrations/")
    _integrations(organization, 4)
    five = _queries(client, "/portal/integrations/")
    html = client.get("/portal/integrations/").content.decode()
    assert html.count("<strong>credentials_rejected</strong>") == 5
    assert five == one, (one, five)


def test_the_webhooks_list_and_logs_pages_make_a_constant_number_of_queries():
    client, organization = _admin()

    def add_webhooks(n):
        for _ in range(n):
            webhook_create(
                organization=organization,
                name=f"w{uuid.uuid4().hex[:6]}",
                url="https://e.example.com/in",
                events=["application.created"],
            )

    add_webhooks(1)
    one = _queries(client, "/portal/webhooks/")
    add_webhooks(4)
    five = _queries(client, "/portal/webhooks/")
    assert five == one, (one, five)

    webhook = Webhook.objects.order_by("created_at").first()

    def add_logs(n):
        for _ in range(n):
            trigger_event(organization=organization, event="application.created", payload={})
        for delivery in Delivery.objects.filter(webhook=webhook, logs__isnull=True):
            WebhookLog.objects.create(
                organization_id=organization.pk,
                webhook_id=webhook.pk,
                delivery=delivery,
                event_type="application.created",
                attempt=1,
                request_url=webhook.url,
                success=True,
                response_status=200,
                created_at=timezone.now(),
            )

    add_logs(1)
    logs_one = _queries(client, f"/portal/webhooks/{webhook.pk}/logs/")
    add_logs(4)
    logs_five = _queries(client, f"/portal/webhooks/{webhook.pk}/logs/")
    assert WebhookLog.objects.filter(webhook=webhook).count() == 5
    assert logs_five == logs_one, (logs_one, logs_five)


def test_health_summaries_of_many_integrations_agree_with_health_summary_of_each():
    organization = OrganizationFactory()
    _integrations(organization, 3)
    integrations = list(organization_integrations(organization))
    now = timezone.now()
    for n in range(15):  # more than the strip's 12
        HealthCheck.objects.create(
            integration=integrations[0], status="degraded", response_time_ms=n, checked_at=now - timedelta(seconds=n)
        )
    many = health_summaries(integrations=integrations, limit=12)
    for integration in integrations:
        one = health_summary(integration=integration, limit=12)
        got = many[integration.pk]
        assert [c.pk for c in got.recent] == [c.pk for c in one.recent]
        assert (got.checks_24h, got.up_24h, got.average_response_time_ms_24h, got.uptime_24h) == (
            one.checks_24h,
            one.up_24h,
            one.average_response_time_ms_24h,
            one.uptime_24h,
        )
    assert len(many[integrations[0].pk].recent) == 12


def organization_integrations(organization):
    return Integration.objects.filter(organization=organization).order_by("name")
