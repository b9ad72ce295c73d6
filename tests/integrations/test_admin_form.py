"""The integration admin as a newcomer meets it: config hints from the catalogue, a
multi-line write-only credentials field, readable errors, names instead of reprs, a list
that fits a laptop screen."""

import json
import re
from http import HTTPStatus
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from integrations import providers
from integrations.models import Integration
from tests.factories import OrganizationFactory
from tests.integrations.conftest import SENTINEL
from tests.integrations.factories import IntegrationFactory, OAuthIntegrationFactory
from tests.integrations.grants.conftest import docusign_jwt
from tests.integrations.grants.keys import rsa_pem

pytestmark = pytest.mark.django_db

ADMIN = "/admin/integrations/integration/"


@pytest.fixture
def organization():
    return OrganizationFactory(slug="acme", name="Acme Recruiting Inc.")


def _hint(page: str, provider: str) -> str:
    match = re.search(rf'<div data-provider="{provider}"(?: hidden)?>(.*?)</div>', page, re.S)
    assert match, f"no hint for {provider}"
    return match.group(1)


def _errors(page: str, field: str) -> list[str]:
    """The messages of the error list in `field`'s row."""
    row = re.search(rf'<div class="form-row[^"]*field-{field}[^"]*">(.*?)</div>\s*</div>', page, re.S)
    assert row, f"no row for {field}"
    errorlist = re.search(r'<ul class="errorlist"[^>]*>(.*?)</ul>', row.group(1), re.S)
    return re.findall(r"<li>(.*?)</li>", errorlist.group(1), re.S) if errorlist else []


@pytest.mark.parametrize("provider", [provider.name for provider in providers.provider_list()])
def test_add_page_lists_each_providers_config_keys(admin_client, provider):
    page = admin_client.get(f"{ADMIN}add/").content.decode()
    hint = _hint(page, provider)
    entry = providers.get_provider(provider)
    for field in entry.all_config_fields():
        assert f"<code>{field.name}</code>" in hint
        required = ", ".join(field.required_for) or "optional"
        assert f"<td>{required}</td>" in hint
    if not entry.all_config_fields():
        assert "takes no config keys" in hint


def test_hints_follow_the_provider_select_with_a_local_script(admin_client, organization):
    page = admin_client.get(f"{ADMIN}add/").content.decode()
    assert 'id="config-hints"' in page
    assert '<script src="/static/integrations/config_hints.js"></script>' in page
    assert not re.search(r'<script[^>]+src="(https?:)?//', page)  # nothing from a CDN
    script = Path(finders.find("integrations/config_hints.js")).read_text()
    assert 'getElementById("id_provider")' in script
    assert 'addEventListener("change"' in script
    assert len(re.findall(r'<div data-provider="[a-z_]+" hidden>', page)) == len(providers.provider_list())

    integration = IntegrationFactory(organization=organization, provider="workday", config={"tenant": "acme"})
    page = admin_client.get(f"{ADMIN}{integration.pk}/change/").content.decode()
    assert 'data-current="workday"' in page
    assert '<div data-provider="workday">' in page  # shown before any script runs
    assert '<div data-provider="rippling" hidden>' in page
    hint = _hint(page, "workday")
    assert "Workday tenant name" in hint  # the catalogue's help
    assert "<td>oauth2, api_key, saml</td>" in hint  # tenant: required for which auth types


def test_credentials_are_a_textarea_that_never_renders_a_value(admin_client, organization):
    integration = IntegrationFactory(organization=organization, credentials={"api_key": SENTINEL})
    page = admin_client.get(f"{ADMIN}{integration.pk}/change/").content.decode()
    assert re.search(r'<textarea name="new_credentials"[^>]*>\s*</textarea>', page)
    response = admin_client.post(
        f"{ADMIN}{integration.pk}/change/",
        {"name": integration.name, "provider": "rippling", "auth_type": "api_key", "config": "{}",
         "new_credentials": f'{{"api_key": "{SENTINEL}-new", "bogus": 5}}'},
    )  # fmt: skip
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert re.search(r'<textarea name="new_credentials"[^>]*>\s*</textarea>', page)
    assert SENTINEL not in page


def test_a_pem_key_pastes_with_its_line_breaks(admin_client, organization):
    integration = docusign_jwt(organization)
    pem = rsa_pem()
    assert "\n" in pem.strip()
    response = admin_client.post(
        f"{ADMIN}{integration.pk}/change/",
        {
            "name": integration.name,
            "provider": integration.provider,
            "auth_type": integration.auth_type,
            "config": json.dumps(integration.config),
            # raw line breaks inside the JSON string, as pasted from the .pem file
            "new_credentials": '{"private_key": "' + pem.strip() + '"}',
        },
    )
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    integration.refresh_from_db()
    assert integration.credentials["private_key"].strip() == pem.strip()


def test_config_errors_are_messages_per_key_not_json(admin_client, organization):
    response = admin_client.post(
        f"{ADMIN}add/",
        {"organization": organization.pk, "name": "HR", "provider": "workday", "auth_type": "api_key",
         "config": '{"colour": "red"}', "new_credentials": '{"api_key": "k"}'},
    )  # fmt: skip
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    errors = _errors(page, "config")
    assert "tenant: Required for workday with api_key." in errors
    assert any(error.startswith("colour: Unknown key for workday") for error in errors)
    assert not any(mark in error for error in errors for mark in ("{", "[", "&quot;", "&#x27;"))
    assert not Integration.objects.exists()


def test_credential_errors_are_messages_per_key_not_json(admin_client, organization):
    response = admin_client.post(
        f"{ADMIN}add/",
        {"organization": organization.pk, "name": "HR", "provider": "rippling", "auth_type": "api_key",
         "config": "{}", "new_credentials": '{"api_key": 5}'},
    )  # fmt: skip
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert _errors(page, "new_credentials") == ["api_key: Must be a string."]


@pytest.mark.parametrize(("needs", "shown"), [(False, ">No</span>"), (True, "Yes: authorize again")])
def test_needs_reauthorization_is_neutral_when_false(admin_client, organization, needs, shown):
    integration = OAuthIntegrationFactory(organization=organization, needs_reauthorization=needs)
    page = admin_client.get(f"{ADMIN}{integration.pk}/change/").content.decode()
    row = re.search(r'field-reauthorization_mark.*?<div class="readonly">(.*?)</div>', page, re.S).group(1)
    assert shown in row
    assert "icon-no" not in row and "icon-yes" not in row


def test_add_form_has_no_empty_health_history(admin_client, organization):
    page = admin_client.get(f"{ADMIN}add/").content.decode()
    assert "Health history" not in page
    assert "healthchecks-TOTAL_FORMS" not in page and "health_checks-TOTAL_FORMS" not in page


def test_organization_is_shown_by_name(admin_client, organization):
    integration = IntegrationFactory(organization=organization)
    IntegrationFactory(organization=OrganizationFactory(slug="globex", name="Globex Corporation"))
    listing = admin_client.get(ADMIN).content.decode()
    assert "Acme Recruiting Inc." in listing
    assert f'<td class="field-organization_name">{organization.name}</td>' in listing
    assert re.search(r'<a href="\?organization__id__exact=[^"]+">Acme Recruiting Inc\.</a>', listing)  # filter
    add = admin_client.get(f"{ADMIN}add/").content.decode()
    assert re.search(r"<option value=\"[^\"]+\">Acme Recruiting Inc\. \(acme\)</option>", add)
    change = admin_client.get(f"{ADMIN}{integration.pk}/change/").content.decode()
    assert re.search(r'field-organization_name.*?<div class="readonly">Acme Recruiting Inc\.</div>', change, re.S)
    assert "Organization object" not in listing + add + change


def test_list_columns_fit_a_laptop_screen(admin_client, organization):
    IntegrationFactory(organization=organization, provider="custom",
                       config={"health_check_url": "https://status.example.com/ping", "category": "hris"})  # fmt: skip
    page = admin_client.get(ADMIN).content.decode()
    names = re.findall(r'<th scope="col" class="[^"]*column-([^" ]+)', page)
    assert names == [
        "name",
        "organization_name",
        "provider_and_auth",
        "status_badge",
        "health_badge",
        "uptime",
        "issues_count",
    ]
    assert "API key</span>" in page  # the auth type under the provider


def test_never_connected_integrations_say_so_instead_of_unhealthy(admin_client, organization):
    OAuthIntegrationFactory(organization=organization, name="fresh oauth")
    IntegrationFactory(organization=organization, name="keyless", credentials={})
    IntegrationFactory(organization=organization, name="keyed but unchecked")
    IntegrationFactory(
        organization=organization, name="broken", health_status=Integration.HealthStatus.UNHEALTHY, credentials={}
    )
    page = admin_client.get(ADMIN).content.decode()
    rows = {
        re.search(r"<th class=\"field-name\"><a [^>]*>(.*?)</a>", row).group(1): row
        for row in re.findall(r"<tr>.*?</tr>", page, re.S)
        if 'class="field-name"' in row
    }
    assert "Not connected" in rows["fresh oauth"] and "Unhealthy" not in rows["fresh oauth"]
    assert "Not connected" in rows["keyless"]
    assert "Not checked yet" in rows["keyed but unchecked"] and "Not connected" not in rows["keyed but unchecked"]
    assert "Unhealthy" in rows["broken"]  # a real failure stays red
