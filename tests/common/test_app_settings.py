"""`ALLOW_PRIVATE_URLS` governs every outbound URL; the per-app names are deprecated aliases.

Each kind of URL is exercised for real: a webhook target at create time, an integration's
custom token URL through the API, and a health check connecting to a local server.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from http import HTTPStatus

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ValidationError

from common.app_settings import DEPRECATED_ALLOW_PRIVATE_URLS, warn_deprecated
from health.checks import HEALTHY, check_integration
from tests.health.conftest import custom
from tests.webhooks.receiver import Receiver
from webhooks.services import webhook_create

pytestmark = pytest.mark.django_db

KINDS = ("webhook", "integration", "health")


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_aliases(settings):
    """Only ALLOW_PRIVATE_URLS is set, and every deprecation warning is logged afresh."""
    for name in DEPRECATED_ALLOW_PRIVATE_URLS:
        setattr(settings, name, None)
    warn_deprecated.cache_clear()
    yield
    warn_deprecated.cache_clear()


def webhook_target_allowed(organization, receiver, api_client) -> bool:
    try:
        webhook_create(organization=organization, name="local", url=receiver.url, events=["*"])
    except ValidationError as error:
        assert "loopback" in str(error)
        return False
    return True


def integration_endpoint_allowed(organization, receiver, api_client) -> bool:
    config = {
        "authorization_url": "https://public.partner.test/authorize",
        "token_url": receiver.url + "token",
        "client_id": "c",
    }
    body = {"name": "idp", "provider": "custom", "auth_type": "oauth2", "config": config, "credentials": {}}
    response = api_client.post("/api/integrations/", body, format="json")
    assert response.status_code in {HTTPStatus.CREATED, HTTPStatus.BAD_REQUEST}, response.content
    return response.status_code == HTTPStatus.CREATED


def health_check_allowed(organization, receiver, api_client) -> bool:
    result = check_integration(custom(organization, receiver.url))
    if result.status != HEALTHY:
        assert "private or reserved address" in result.error
        assert receiver.requests == []
        return False
    assert len(receiver.requests) == 1
    return True


ALLOWED = {
    "webhook": webhook_target_allowed,
    "integration": integration_endpoint_allowed,
    "health": health_check_allowed,
}


def allowed_kinds(organization, receiver, api_client) -> set[str]:
    return {kind for kind in KINDS if ALLOWED[kind](organization, receiver, api_client)}


@pytest.mark.parametrize("value", [True, False])
def test_allow_private_urls_governs_every_kind_of_url(settings, organization, receiver, api_client, value):
    settings.ALLOW_PRIVATE_URLS = value
    assert allowed_kinds(organization, receiver, api_client) == (set(KINDS) if value else set())


def test_a_local_health_check_works_with_only_the_new_setting(settings, organization, receiver):
    """The bug: HEALTH_ALLOW_PRIVATE_URLS defaulted to false although the documented settings allowed it."""
    settings.ALLOW_PRIVATE_URLS = True
    result = check_integration(custom(organization, receiver.url))
    assert result.status == HEALTHY, result.error
    assert len(receiver.requests) == 1


def test_private_urls_are_refused_by_default():
    env = {k: v for k, v in os.environ.items() if "ALLOW_PRIVATE_URLS" not in k}
    assert _app_settings_in_subprocess(env)["allow"] == {"webhooks": False, "integrations": False, "health": False}


def test_the_new_setting_is_read_from_the_environment():
    env = {k: v for k, v in os.environ.items() if "ALLOW_PRIVATE_URLS" not in k}
    result = _app_settings_in_subprocess({**env, "ALLOW_PRIVATE_URLS": "true"})
    assert result["allow"] == {"webhooks": True, "integrations": True, "health": True}
    assert result["warnings"] == []


def test_a_deprecated_name_in_the_environment_still_works_and_warns():
    env = {k: v for k, v in os.environ.items() if "ALLOW_PRIVATE_URLS" not in k}
    result = _app_settings_in_subprocess({**env, "HEALTH_ALLOW_PRIVATE_URLS": "true"})
    assert result["allow"] == {"webhooks": False, "integrations": False, "health": True}
    assert result["warnings"] == ["common.W001"]
    assert "HEALTH_ALLOW_PRIVATE_URLS is deprecated; set ALLOW_PRIVATE_URLS instead" in result["stderr"]


# Each alias, set while ALLOW_PRIVATE_URLS is false, decides for the kinds it used to cover
# (integrations followed the webhooks name when their own was unset; health checks follow both).
ALIAS_COVERS = {
    "WEBHOOKS_ALLOW_PRIVATE_URLS": {"webhook", "integration", "health"},
    "INTEGRATIONS_ALLOW_PRIVATE_URLS": {"integration", "health"},
    "HEALTH_ALLOW_PRIVATE_URLS": {"health"},
}


@pytest.mark.parametrize("alias", DEPRECATED_ALLOW_PRIVATE_URLS)
def test_each_deprecated_alias_still_works_and_logs_a_warning_once(
    settings, organization, receiver, api_client, caplog, alias
):
    settings.ALLOW_PRIVATE_URLS = False
    setattr(settings, alias, True)
    with caplog.at_level(logging.WARNING, logger="common.app_settings"):
        assert allowed_kinds(organization, receiver, api_client) == ALIAS_COVERS[alias]
    warnings = [r.getMessage() for r in caplog.records if alias in r.getMessage()]
    assert warnings == [
        f"The setting {alias} is deprecated; set ALLOW_PRIVATE_URLS instead "
        f"(while {alias} is set, it overrides ALLOW_PRIVATE_URLS)."
    ]


def test_a_deprecated_alias_set_to_false_overrides_the_new_setting(settings, organization, receiver, api_client):
    settings.ALLOW_PRIVATE_URLS = True
    settings.HEALTH_ALLOW_PRIVATE_URLS = False
    assert allowed_kinds(organization, receiver, api_client) == {"webhook", "integration"}


def test_system_check_warns_about_each_deprecated_alias_set(settings):
    assert [m for m in run_checks() if m.id == "common.W001"] == []
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    settings.HEALTH_ALLOW_PRIVATE_URLS = True
    messages = [m for m in run_checks() if m.id == "common.W001"]
    assert [m.msg for m in messages] == [
        "WEBHOOKS_ALLOW_PRIVATE_URLS is deprecated.",
        "HEALTH_ALLOW_PRIVATE_URLS is deprecated.",
    ]
    assert all("ALLOW_PRIVATE_URLS instead" in m.hint for m in messages)


SUBPROCESS_CODE = """
import json, django
django.setup()
from django.core.checks import run_checks
from health import app_settings as health
from integrations import app_settings as integrations
from webhooks import app_settings as webhooks
allow = {"webhooks": webhooks.allow_private_urls(), "integrations": integrations.allow_private_urls(),
         "health": health.allow_private_urls()}
print(json.dumps({"allow": allow, "warnings": [m.id for m in run_checks() if m.id.startswith("common.")]}))
"""


def _app_settings_in_subprocess(env: dict[str, str]) -> dict:
    """The three apps' view of the setting under the development settings and this environment."""
    env = {**env, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    result = subprocess.run([sys.executable, "-c", SUBPROCESS_CODE], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "stderr": result.stderr}
