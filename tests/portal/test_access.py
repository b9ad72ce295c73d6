"""Portal access: links are signed, single-use and expiring; link sessions reach only the
portal; viewers change nothing; one organization never sees another's objects."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from organizations.services import api_key_create
from portal.models import PortalLink
from portal.services import portal_link_create
from tests.concurrency import Concurrently
from tests.factories import MembershipFactory, OrganizationFactory
from webhooks.services.webhooks import webhook_create

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return url[url.index("/portal/") :]


def _link_client(organization, role="admin") -> Client:
    client = Client()
    response = client.get(_path(portal_link_create(organization=organization, role=role).url))
    assert response.status_code == 302 and response["Location"] == "/portal/"
    return client


def _webhook(organization, name="hook"):
    return webhook_create(
        organization=organization, name=name, url="https://hooks.example.com/in", events=["job.created"]
    )


def test_api_creates_a_link_with_an_admin_key(client):
    organization = OrganizationFactory()
    _, key = api_key_create(organization=organization, name="k")
    response = client.post(
        "/api/portal-links/", {"role": "viewer"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"url", "expires_at"} and "/portal/links/" in body["url"]
    link = PortalLink.objects.get()
    assert link.organization == organization and link.role == "viewer"
    assert abs((link.expires_at - timezone.now()).total_seconds() - 900) < 10


def test_api_refuses_read_only_keys_and_bad_bodies(client):
    organization = OrganizationFactory()
    _, read_only = api_key_create(organization=organization, name="r", read_only=True)
    _, key = api_key_create(organization=organization, name="w")
    denied = client.post(
        "/api/portal-links/",
        {"role": "admin"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {read_only}",
    )
    assert denied.status_code == 403
    for body in ({"role": "owner"}, {"role": "admin", "expires_in": 999999}, {"role": "admin", "extra": 1}):
        bad = client.post(
            "/api/portal-links/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        assert bad.status_code == 400, body
    assert not PortalLink.objects.exists()


def test_a_link_opens_once_then_is_refused_with_a_page():
    organization = OrganizationFactory()
    path = _path(portal_link_create(organization=organization, role="viewer").url)
    first = Client()
    assert first.get(path).status_code == 302
    assert first.get("/portal/").status_code == 200
    again = Client().get(path)
    assert again.status_code == 410 and b"already used" in again.content


def test_an_expired_link_is_refused_with_a_page():
    organization = OrganizationFactory()
    path = _path(portal_link_create(organization=organization, role="admin").url)
    PortalLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get(path)
    assert response.status_code == 410 and b"expired" in response.content
    assert Client().get("/portal/links/not-a-token/").status_code == 410


@pytest.mark.django_db(transaction=True)
def test_two_opens_at_once_only_one_wins():
    organization = OrganizationFactory()
    path = _path(portal_link_create(organization=organization, role="admin").url)
    statuses: list[int] = []
    with Concurrently(
        lambda: statuses.append(Client().get(path).status_code), lambda: statuses.append(Client().get(path).status_code)
    ):
        pass
    assert sorted(statuses) == [302, 410]


def test_a_link_session_reaches_neither_admin_nor_api():
    client = _link_client(OrganizationFactory())
    assert client.get("/admin/").status_code == 302  # to the admin login
    assert client.get("/api/integrations/webhooks/").status_code in (401, 403)


def test_a_viewer_changes_nothing():
    organization = OrganizationFactory()
    webhook = _webhook(organization)
    client = _link_client(organization, role="viewer")
    assert client.get(f"/portal/webhooks/{webhook.pk}/").status_code == 200
    for path in (
        "/portal/webhooks/new/",
        f"/portal/webhooks/{webhook.pk}/edit/",
        f"/portal/webhooks/{webhook.pk}/secret/",
        f"/portal/webhooks/{webhook.pk}/test/",
    ):
        response = client.post(path, {"name": "x", "url": "https://e.example.com"})
        assert response.status_code == 403, path
    webhook.refresh_from_db()
    assert webhook.name == "hook"


def test_one_organization_never_sees_anothers_webhooks():
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    _webhook(mine, "mine")
    other = _webhook(theirs, "theirs")
    client = _link_client(mine)
    listing = client.get("/portal/webhooks/")
    assert b"mine" in listing.content and b"theirs" not in listing.content
    for path in ("", "edit/", "logs/", "secret/"):
        assert client.get(f"/portal/webhooks/{other.pk}/{path}").status_code == 404, path
    assert client.post(f"/portal/webhooks/{other.pk}/secret/").status_code == 404


def test_members_log_in_and_admins_create_webhooks_with_errors_on_the_page():
    membership = MembershipFactory(role="admin")
    client = Client()
    client.force_login(membership.user)
    bad = client.post("/portal/webhooks/new/", {"name": "", "url": "not a url", "events": ["nope"]})
    assert bad.status_code == 400 and b"was not saved" in bad.content
    good = client.post(
        "/portal/webhooks/new/", {"name": "n", "url": "https://e.example.com/in", "events": ["job.created"]}
    )
    assert good.status_code == 302
    for page in ("/portal/", "/portal/webhooks/", "/portal/integrations/", "/portal/events/", good["Location"]):
        response = client.get(page)
        assert response.status_code == 200, page
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        assert response["X-Frame-Options"] == "DENY"


def test_frame_ancestors_relax_framing_only_on_portal_pages(settings):
    settings.PORTAL_FRAME_ANCESTORS = ["https://app.example.com"]
    client = _link_client(OrganizationFactory())
    page = client.get("/portal/")
    assert page["Content-Security-Policy"] == "frame-ancestors https://app.example.com"
    assert "X-Frame-Options" not in page
    assert Client().get("/admin/login/")["X-Frame-Options"] == "DENY"


def test_anonymous_visitors_go_to_the_login_page(client):
    response = client.get("/portal/webhooks/")
    assert response.status_code == 302 and response["Location"].startswith("/portal/login/")
    assert client.get("/portal/login/").status_code == 200


def test_integrations_of_another_organization_are_404_and_bad_connect_input_is_a_message():
    from tests.integrations.oauth_helpers import CUSTOM_CONFIG, oauth_integration

    mine, theirs = OrganizationFactory(), OrganizationFactory()
    other = oauth_integration(theirs, "custom", name="theirs", config=CUSTOM_CONFIG)
    client = _link_client(mine)
    assert b"theirs" not in client.get("/portal/integrations/").content
    assert client.post(f"/portal/integrations/{other.pk}/reconnect/").status_code == 404
    assert (
        client.post(f"/portal/integrations/{other.pk}/credentials/", {"key": "api_key", "value": "x"}).status_code
        == 404
    )
    bad = client.post("/portal/integrations/connect/", {"name": "x", "authorization_url": "nope", "token_url": ""})
    assert bad.status_code == 400 and b"did not work" in bad.content
    viewer = _link_client(mine, role="viewer")
    assert viewer.post("/portal/integrations/connect/", {"name": "y"}).status_code == 403


def test_a_disabled_webhook_shows_its_reason_and_an_admin_re_enables_it():
    from webhooks.services.webhooks import webhook_disable

    organization = OrganizationFactory()
    webhook = webhook_disable(
        webhook=_webhook(organization), reason="Gone: the endpoint answered 410.", disabled_by="engine"
    )
    client = _link_client(organization)
    page = client.get(f"/portal/webhooks/{webhook.pk}/")
    assert b"Gone: the endpoint answered 410." in page.content and b"Re-enable" in page.content
    answer = client.post(f"/portal/webhooks/{webhook.pk}/enable/", HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and b"enabled again" in answer.content
    webhook.refresh_from_db()
    assert webhook.is_active and webhook.disabled_at is None


def test_recover_takes_a_window_and_bad_times_are_messages():
    organization = OrganizationFactory()
    webhook = _webhook(organization)
    client = _link_client(organization)
    for since, expected in (
        ("", b"give a start time"),
        ("2000-01-01T00:00", b"at most 30 days"),
        ("garbage", b"give a start"),
        ("2026-13-45T00:00", b"give a start"),
    ):
        answer = client.post(f"/portal/webhooks/{webhook.pk}/recover/", {"since": since}, HTTP_HX_REQUEST="true")
        assert answer.status_code == 200 and expected in answer.content, since
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    answer = client.post(f"/portal/webhooks/{webhook.pk}/recover/", {"since": since}, HTTP_HX_REQUEST="true")
    assert b"0 failed deliveries queued again" in answer.content


def test_a_member_of_several_organizations_switches_between_them():
    first = MembershipFactory(role="admin", organization=OrganizationFactory(name="Alpha", slug="alpha"))
    second = MembershipFactory(
        role="viewer", user=first.user, organization=OrganizationFactory(name="Beta", slug="beta")
    )
    stranger = OrganizationFactory(name="Gamma", slug="gamma")
    _webhook(first.organization, name="alpha hook")
    _webhook(second.organization, name="beta hook")
    _webhook(stranger, name="gamma hook")
    client = Client()
    client.force_login(first.user)
    page = client.get("/portal/webhooks/")
    assert b"alpha hook" in page.content and b"beta hook" not in page.content  # the first by name
    assert b'<select id="organization-switch" name="organization">' in page.content
    assert client.post("/portal/organization/", {"organization": "beta"})["Location"] == "/portal/"
    page = client.get("/portal/webhooks/")
    assert b"beta hook" in page.content and b"alpha hook" not in page.content
    assert b"Role: viewer" in page.content  # the role of that membership
    refused = client.post("/portal/organization/", {"organization": "gamma"})
    assert refused.status_code == 404 and b"not a member" in refused.content
    assert b"beta hook" in client.get("/portal/webhooks/").content  # unchanged
    # A link session is bound to its organization: it cannot switch.
    linked = _link_client(stranger)
    assert linked.post("/portal/organization/", {"organization": "alpha"}).status_code == 302
    assert b"gamma hook" in linked.get("/portal/webhooks/").content
