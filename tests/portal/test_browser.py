"""The portal in a real headless Chromium against the live server: a member creates a
webhook, sends a test that reaches a local receiver and the logs, replays it, rotates the
secret; portal links open once and expire; a viewer can change nothing. Screenshots of
each page go to docs/portal/."""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from organizations.services import api_key_create
from portal.models import PortalLink
from tests.factories import MembershipFactory
from tests.webhooks.receiver import Receiver
from webhooks.models import Webhook

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "portal-browser-pass-1"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "portal"


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # (setup and assertions) are synchronous and safe, so Django's async guard is lifted.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is needed (.ci/run installs it): apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


def _offline(page, live_server, outside):
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(live_server.url)
            else (outside.append(route.request.url), route.abort())
        ),
    )


def _shot(page, name):
    """Only with PORTAL_SCREENSHOTS=1 (refreshing docs/portal/), so test runs leave the tree clean."""
    if not os.environ.get("PORTAL_SCREENSHOTS"):
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_member_creates_tests_replays_and_rotates(live_server, browser, receiver):
    membership = MembershipFactory(role="admin", organization__name="Acme Hiring")
    membership.user.set_password(PASSWORD)
    membership.user.save()
    outside: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _offline(page, live_server, outside)

    page.goto(f"{live_server.url}/portal/login/")
    _shot(page, "login")
    page.fill("#id_username", membership.user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Acme Hiring")
    _shot(page, "overview")

    page.click("text=Webhooks")
    page.click("text=New webhook")
    page.click("main button[type=submit]")  # the browser refuses empty required fields: still the form
    page.fill("#id_name", "ATS sync")
    page.fill("#id_url", "ftp://nowhere")
    page.click("main button[type=submit]")
    expect(page.locator(".error")).to_contain_text("was not saved")
    page.fill("#id_url", receiver.url)
    page.check("input[value='job.created']")
    page.fill("#id_headers", "X-Team: recruiting")
    page.fill("#id_filter", '{"type": {"$in": ["job.created"')  # not JSON: a message, the form kept
    page.click("main button[type=submit]")
    expect(page.locator(".error")).to_contain_text("filter: Not valid JSON")
    expect(page.locator("input[value='job.created']")).to_be_checked()
    page.fill("#id_headers", "X-Team: recruiting")
    page.fill("#id_filter", '{"type": {"$in": ["job.created", "webhook.test"]}}')
    contract = page.locator("details.contract", has_text="Schema and example of job.created")
    contract.locator("summary").focus()
    page.keyboard.press("Enter")  # a <details> opens from the keyboard
    expect(contract.locator("pre").first).to_be_visible()
    _shot(page, "webhook-form")
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("ATS sync")
    webhook = Webhook.objects.get(name="ATS sync")
    assert webhook.events == ["job.created"] and webhook.organization == membership.organization
    assert webhook.filter == {"type": {"$in": ["job.created", "webhook.test"]}}
    page.click("summary:text('Content filter')")
    expect(page.locator("main pre").first).to_contain_text('"webhook.test"')

    page.click("button:text('Send a test')")
    expect(page.locator("#result")).to_contain_text("Test sent (success)")
    (delivered,) = receiver.wait_for(1)
    assert delivered.headers["x-team"] == "recruiting"
    page.reload()
    expect(page.locator("main")).to_contain_text("1 attempts, 0 failed")
    _shot(page, "webhook")

    page.click("text=All logs, with filters")
    page.select_option("#id_success", "true")
    page.click("button:text('Filter')")
    rows = page.locator("tbody tr a")
    expect(rows).to_have_count(1)
    _shot(page, "logs")
    rows.first.click()
    expect(page.locator("h2").first).to_have_text("Request")
    page.click("button:text('Replay')")
    expect(page.locator(".notice")).to_contain_text("Replayed (success")
    assert len(receiver.wait_for(2)) == 2
    _shot(page, "attempt")

    page.goto(f"{live_server.url}/portal/webhooks/{webhook.pk}/")
    old_secret = webhook.secret
    page.click("button:text('Reveal secret')")
    expect(page.locator("#result .secret")).to_have_text(old_secret)
    page.click("button:text('Rotate secret')")
    expect(page.locator("#result")).to_contain_text("rotated")
    webhook.refresh_from_db()
    assert webhook.secret != old_secret
    expect(page.locator("#result .secret")).to_have_text(webhook.secret)

    page.goto(f"{live_server.url}/portal/events/")
    expect(page.locator("h3")).to_have_count(3)
    created = page.locator("details.contract", has_text="Schema and example of application.created")
    created.locator("summary").click()
    expect(created).to_contain_text("Example payload")
    expect(created).to_contain_text("JSON Schema")
    _shot(page, "events")
    page.goto(f"{live_server.url}/portal/integrations/")
    _shot(page, "integrations")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/portal/webhooks/{webhook.pk}/")
    _shot(page, "webhook-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert outside == []


def test_links_open_once_expire_and_viewers_change_nothing(live_server, browser):
    membership = MembershipFactory(role="admin")
    organization = membership.organization
    webhook = Webhook.objects.create(
        organization=organization, name="hook", url="https://e.example.com/in", secret="whsec_" + "A" * 44
    )
    _, key = api_key_create(organization=organization, name="embed")
    api = browser.new_context()
    created = api.request.post(
        f"{live_server.url}/api/portal-links/", data={"role": "viewer"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert created.status == 201
    url = created.json()["url"].replace("http://127.0.0.1:8000", live_server.url)

    viewer = browser.new_page(viewport={"width": 1280, "height": 900})
    viewer.goto(url)
    expect(viewer.locator(".role")).to_have_text("Role: viewer")
    viewer.goto(f"{live_server.url}/portal/webhooks/{webhook.pk}/")
    expect(viewer.locator("button:text('Send a test')")).to_have_count(0)
    # Forged POST with the page's own CSRF token: the role check refuses it.
    status = viewer.evaluate(
        """async (path) => {
            const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
            const body = new URLSearchParams({csrfmiddlewaretoken: token});
            return (await fetch(path, {method: "POST", body})).status;
        }""",
        f"/portal/webhooks/{webhook.pk}/secret/",
    )
    assert status == 403
    secret = webhook.secret
    webhook.refresh_from_db()
    assert webhook.secret == secret

    again = browser.new_page()
    again.goto(url)
    expect(again.locator("h1")).to_have_text("This link was already used")
    _shot(again, "link-used")

    created = api.request.post(
        f"{live_server.url}/api/portal-links/", data={"role": "admin"}, headers={"Authorization": f"Bearer {key}"}
    )
    PortalLink.objects.filter(used_at__isnull=True).update(expires_at=timezone.now() - timedelta(seconds=1))
    late = browser.new_page()
    late.goto(created.json()["url"].replace("http://127.0.0.1:8000", live_server.url))
    expect(late.locator("h1")).to_have_text("This link has expired")
    api.close()


def test_connecting_a_custom_oauth_integration_goes_through_the_provider_and_back(live_server, browser, settings):
    from integrations.models import Integration
    from tests.portal.authserver import AuthorizationServer

    settings.PUBLIC_BASE_URL = live_server.url  # the redirect URI the provider sends the browser back to
    provider = AuthorizationServer().start()
    try:
        membership = MembershipFactory(role="admin")
        membership.user.set_password(PASSWORD)
        membership.user.save()
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server.url}/portal/login/")
        page.fill("#id_username", membership.user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/portal/integrations/")
        page.fill("#id_name", "Our ATS")
        page.fill("#id_authorization_url", f"{provider.url}/authorize")
        page.fill("#id_token_url", f"{provider.url}/token")
        page.fill("#id_client_id", "portal-client")
        page.fill("#id_client_secret", "portal-client-secret")
        page.fill("#id_scopes", "read write")
        page.click("button:text('Connect with OAuth')")
        expect(page.locator("h1")).to_have_text("Connected")
        (token_request,) = provider.token_requests
        assert token_request["code"] == "the-code" and token_request["code_verifier"]
        integration = Integration.objects.get(name="Our ATS")
        assert integration.organization == membership.organization and integration.status == "active"
        page.click("text=Back to the portal")
        expect(page.locator("main")).to_contain_text("Our ATS")
        _shot(page, "integrations")
    finally:
        provider.stop()
