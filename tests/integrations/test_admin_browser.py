"""The integration add page in a real headless Chromium: the config hints follow the
provider select, with nothing fetched from outside the local server."""

import shutil

import pytest
from playwright.sync_api import sync_playwright

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "browser-test-pass-1"


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("browser", "browser@example.com", PASSWORD)


def test_config_hints_follow_the_provider_select(live_server, superuser):
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is needed (.ci/run installs it): apt-get install chromium"
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            # Offline: any request beyond the test server fails and is recorded.
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(live_server.url)
                    else (outside.append(route.request.url), route.abort())
                ),
            )
            page.goto(f"{live_server.url}/admin/login/?next=/admin/integrations/integration/add/")
            page.fill("#id_username", "browser")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_selector("#config-hints")

            def visible() -> list[str]:
                return page.eval_on_selector_all(
                    "#config-hints [data-provider]", "els => els.filter(e => !e.hidden).map(e => e.dataset.provider)"
                )

            assert visible() == [""]  # "Choose a provider ..."
            page.select_option("#id_provider", "workday")
            assert visible() == ["workday"]
            assert page.is_visible("#config-hints [data-provider=workday] >> text=Workday tenant name")
            page.select_option("#id_provider", "bamboohr")
            assert visible() == ["bamboohr"]
            assert page.is_visible("#config-hints [data-provider=bamboohr] >> code:text('company_domain')")
        finally:
            browser.close()
    assert outside == []
