"""The admin side of connection issues: the read-only list, the badge, token lifecycle,
and the reconnect page an `integration.reauthorization_required` event links to."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
import responses
from django.contrib.auth.models import Permission
from django.utils import timezone

from integrations.detectors import reconnect_url
from integrations.models import ConnectionIssue, Integration
from integrations.services import integration_create
from organizations.models import Membership
from tests.factories import OrganizationFactory, UserFactory
from tests.integrations.conftest import SENTINEL
from tests.integrations.factories import IntegrationFactory
from tests.integrations.grants.keys import rsa_pem

pytestmark = pytest.mark.django_db

ISSUES = "/admin/integrations/connectionissue/"
INTEGRATIONS = "/admin/integrations/integration/"


def make_issue(integration, kind="credentials_rejected", status="open", **kwargs) -> ConnectionIssue:
    now = timezone.now()
    return ConnectionIssue.objects.create(
        organization=integration.organization,
        integration=integration,
        kind=kind,
        status=status,
        message=kwargs.pop("message", f"{kind}: the provider said no"),
        count=1,
        first_seen_at=now,
        last_seen_at=now,
        opened_at=None if status == "pending" else now,
        **kwargs,
    )


def staff(organization, role="admin"):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="integrations"))
    Membership.objects.create(user=user, organization=organization, role=role)
    return user


# --- the issue list -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?status__exact=open",
        "?kind__exact=rate_limited",
        "?integration__provider=rippling",
        "?q=provider",
        "?q=acme",
    ],
)
def test_the_issue_list_loads_with_its_filters(admin_client, organization, query):
    integration = IntegrationFactory(organization=organization, credentials={"api_key": SENTINEL})
    make_issue(integration)
    make_issue(integration, "rate_limited", "resolved", resolved_at=timezone.now())
    response = admin_client.get(f"{ISSUES}{query}")
    assert response.status_code == HTTPStatus.OK
    assert SENTINEL not in response.content.decode()


def test_the_issue_list_filters_narrow_it(admin_client, organization):
    hr = IntegrationFactory(organization=organization, provider="rippling")
    calendar = IntegrationFactory(organization=organization, provider="google_calendar", auth_type="oauth2")
    make_issue(hr, "credentials_rejected")
    make_issue(calendar, "missing_scopes")
    make_issue(calendar, "rate_limited", "resolved")

    def shown(query):
        return sorted(i.kind for i in admin_client.get(f"{ISSUES}{query}").context["cl"].queryset)

    assert shown("?status__exact=open") == ["credentials_rejected", "missing_scopes"]
    assert shown("?kind__exact=missing_scopes") == ["missing_scopes"]
    assert shown("?integration__provider=google_calendar") == ["missing_scopes", "rate_limited"]


def test_issues_are_read_only_in_the_admin(admin_client, organization):
    issue = make_issue(IntegrationFactory(organization=organization))
    page = admin_client.get(f"{ISSUES}{issue.pk}/change/")
    assert page.status_code == HTTPStatus.OK
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.get(f"{ISSUES}add/").status_code == HTTPStatus.FORBIDDEN
    assert admin_client.post(f"{ISSUES}{issue.pk}/delete/", {"post": "yes"}).status_code == HTTPStatus.FORBIDDEN
    assert ConnectionIssue.objects.filter(pk=issue.pk).exists()


def test_a_member_sees_only_their_organizations_issues(client, organization):
    mine = make_issue(IntegrationFactory(organization=organization))
    theirs = make_issue(IntegrationFactory(organization=OrganizationFactory(slug="globex")))
    client.force_login(staff(organization, role="viewer"))
    assert list(client.get(ISSUES).context["cl"].queryset) == [mine]
    assert client.get(f"{ISSUES}{theirs.pk}/change/").status_code == HTTPStatus.FOUND  # "does not exist"


# --- the badge and the token lifecycle on integrations ----------------------------------------


def test_the_badge_shows_open_issues_count_and_kinds_and_is_neutral_without(admin_client, organization):
    troubled = IntegrationFactory(organization=organization, name="Troubled")
    fine = IntegrationFactory(organization=organization, name="Fine")
    make_issue(troubled, "credentials_rejected")
    make_issue(troubled, "rate_limited")
    make_issue(troubled, "provider_unavailable", "pending")  # not shown: not an issue yet
    make_issue(fine, "config_invalid", "resolved")
    content = admin_client.get(INTEGRATIONS).content.decode()  # the list: compact, kinds on hover
    assert 'title="Credentials rejected, Rate limited">' in content and "2 open</span>" in content
    assert f"{ISSUES}?integration__exact={troubled.pk}&amp;status__exact=open" in content
    page = admin_client.get(f"{INTEGRATIONS}{troubled.pk}/change/").content.decode()
    assert "2 open: Credentials rejected, Rate limited" in page
    page = admin_client.get(f"{INTEGRATIONS}{fine.pk}/change/").content.decode()
    assert "No open issues" in page
    linked = admin_client.get(f"{ISSUES}?integration__exact={troubled.pk}&status__exact=open")
    assert sorted(i.kind for i in linked.context["cl"].queryset) == ["credentials_rejected", "rate_limited"]


def test_the_integration_list_has_no_query_per_integration(admin_client, organization, django_assert_max_num_queries):
    for n in range(3):
        make_issue(IntegrationFactory(organization=organization, name=f"a{n}"))
    admin_client.get(INTEGRATIONS)
    with django_assert_max_num_queries(20) as few:
        admin_client.get(INTEGRATIONS)
    for n in range(20):
        make_issue(IntegrationFactory(organization=organization, name=f"b{n}"))
    with django_assert_max_num_queries(20) as many:
        admin_client.get(INTEGRATIONS)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_change_page_shows_the_token_lifecycle_read_only(admin_client, organization):
    integration = IntegrationFactory(
        organization=organization,
        provider="google_calendar",
        auth_type="oauth2",
        credentials={"access_token": SENTINEL, "refresh_token": SENTINEL + "r"},
        token_expires_at=timezone.now() + timedelta(hours=1),
        token_refresh_attempts=12,
        token_refresh_failures=3,
        refresh_failure_count=1,
        last_token_refresh_at=timezone.now(),
        granted_scopes=["https://www.googleapis.com/auth/calendar.readonly"],
    )
    make_issue(integration, "missing_scopes")
    content = admin_client.get(f"{INTEGRATIONS}{integration.pk}/change/").content.decode()
    for label in ["Token refresh attempts", "Token refresh failures", "Refresh failure count", "Last token refresh at"]:
        assert label in content
    assert "Next token refresh" in content and "Granted scopes" in content
    assert "https://www.googleapis.com/auth/calendar.readonly" in content
    assert "1 open: Missing scopes" in content
    assert 'name="token_refresh_attempts"' not in content  # read-only, not an input
    assert SENTINEL not in content


# --- reconnecting ------------------------------------------------------------------------------


@pytest.fixture
def dead_grant(organization, settings):
    settings.GOOGLE_CLIENT_ID = "google-client"
    settings.GOOGLE_CLIENT_SECRET = SENTINEL
    integration = integration_create(
        organization=organization, name="Calendar", provider="google_calendar", auth_type="oauth2"
    )
    Integration.objects.filter(pk=integration.pk).update(status="error", needs_reauthorization=True)
    make_issue(integration, "reauthorization_required", message="Google Calendar no longer accepts it.")
    return integration


def test_the_reconnect_url_is_the_public_admin_page(dead_grant, settings):
    settings.PUBLIC_BASE_URL = "https://hire.example.com/"
    assert reconnect_url(dead_grant) == (
        f"https://hire.example.com/admin/integrations/integration/{dead_grant.pk}/reconnect/"
    )


def test_the_reconnect_page_confirms_with_a_post_to_the_authorize_view(client, organization, dead_grant):
    client.force_login(staff(organization))
    page = client.get(f"{INTEGRATIONS}{dead_grant.pk}/reconnect/")
    assert page.status_code == HTTPStatus.OK
    content = page.content.decode()
    assert f'<form method="post" action="{INTEGRATIONS}{dead_grant.pk}/authorize/">' in content
    assert "csrfmiddlewaretoken" in content and "Reconnect with Google Calendar" in content
    assert "no longer accepts it" in content  # the open issue is explained
    assert SENTINEL not in content
    # Pressing the button: the existing, browser-bound authorization flow.
    started = client.post(f"{INTEGRATIONS}{dead_grant.pk}/authorize/")
    assert started.status_code == HTTPStatus.FOUND
    assert started["Location"].startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    assert any(name.startswith("oauth_binding_") for name in started.cookies)  # bound to this browser
    assert dead_grant.oauth_states.count() == 1


def test_the_reconnect_page_itself_starts_nothing(client, organization, dead_grant):
    client.force_login(staff(organization))
    assert client.post(f"{INTEGRATIONS}{dead_grant.pk}/reconnect/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
    client.get(f"{INTEGRATIONS}{dead_grant.pk}/reconnect/")
    assert not dead_grant.oauth_states.exists()


def test_an_admin_of_another_organization_is_refused(client, dead_grant):
    other = OrganizationFactory(slug="globex")
    client.force_login(staff(other))
    page = client.get(f"{INTEGRATIONS}{dead_grant.pk}/reconnect/")
    assert page.status_code == HTTPStatus.FOUND and page.url == "/admin/"  # "does not exist"
    assert client.post(f"{INTEGRATIONS}{dead_grant.pk}/authorize/").status_code == HTTPStatus.FOUND
    assert not dead_grant.oauth_states.exists()


def test_a_viewer_cannot_reconnect(client, organization, dead_grant):
    client.force_login(staff(organization, role="viewer"))
    assert client.get(f"{INTEGRATIONS}{dead_grant.pk}/reconnect/").status_code == HTTPStatus.FORBIDDEN


def test_signing_in_first_comes_back_to_the_reconnect_page(client, dead_grant):
    page = client.get(f"{INTEGRATIONS}{dead_grant.pk}/reconnect/")
    assert page.status_code == HTTPStatus.FOUND
    assert page.url.startswith("/admin/login/") and "reconnect" in page.url


def test_a_jwt_integration_offers_getting_a_token_again_instead_of_an_authorization(client, organization):
    key = rsa_pem()
    docusign = integration_create(
        organization=organization,
        name="Envelopes",
        provider="docusign",
        auth_type="jwt",
        config={"client_id": "integration-key", "user_id": "user-guid"},
        credentials={"private_key": key},
    )
    Integration.objects.filter(pk=docusign.pk).update(needs_reauthorization=True, status="error")
    client.force_login(staff(organization))
    content = client.get(f"{INTEGRATIONS}{docusign.pk}/reconnect/").content.decode()
    assert f'action="{INTEGRATIONS}{docusign.pk}/retry-grant/"' in content
    assert "/authorize/" not in content
    assert not [line for line in key.splitlines()[1:-1] if line in content]
    assert "https://account.docusign.com/oauth/auth?" in content  # the consent URL to visit
    assert client.get(f"{INTEGRATIONS}{docusign.pk}/retry-grant/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        # DocuSign's answer while the user has not granted consent yet
        mock.post("https://account.docusign.com/oauth/token", status=400, json={"error": "consent_required"})
        retried = client.post(f"{INTEGRATIONS}{docusign.pk}/retry-grant/", follow=True)
    assert retried.status_code == HTTPStatus.OK
    assert "The provider still refuses" in retried.content.decode()
    assert retried.redirect_chain[-1][0] == f"{INTEGRATIONS}{docusign.pk}/change/"


def test_an_api_key_integration_is_sent_to_its_change_page(client, organization):
    hr = IntegrationFactory(organization=organization)
    client.force_login(staff(organization))
    content = client.get(f"{INTEGRATIONS}{hr.pk}/reconnect/").content.decode()
    assert "send new credentials" in content and f"{INTEGRATIONS}{hr.pk}/change/" in content
    assert "<form" not in content.split('id="content-main"')[1]
