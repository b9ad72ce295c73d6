from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from common.fields import clear_fernet_caches
from organizations.services import api_key_create
from tests.factories import OrganizationFactory
from tests.webhooks.receiver import Receiver

# The fault-injection suite needs PostgreSQL and takes minutes: `make test-faults` runs it.
collect_ignore = [] if os.environ.get("RUN_FAULT_TESTS") else ["faults"]


class KeyClient(APIClient):
    """An APIClient that sends an organization API key, plus the objects behind it."""

    def __init__(self, raw_key: str, api_key, **kwargs):
        super().__init__(**kwargs)
        self.raw_key = raw_key
        self.api_key = api_key
        self.organization = api_key.organization
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")


def make_key_client(organization, *, read_only: bool = False) -> KeyClient:
    api_key, raw_key = api_key_create(organization=organization, name="test", read_only=read_only)
    return KeyClient(raw_key, api_key)


@pytest.fixture
def organization():
    return OrganizationFactory(slug="acme")


@pytest.fixture
def other_organization():
    return OrganizationFactory(slug="globex")


@pytest.fixture
def api_client(organization) -> KeyClient:
    """Read/write key of `organization`."""
    return make_key_client(organization)


@pytest.fixture
def read_only_client(organization) -> KeyClient:
    return make_key_client(organization, read_only=True)


@pytest.fixture
def other_client(other_organization) -> KeyClient:
    """Read/write key of `other_organization`."""
    return make_key_client(other_organization)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def use_fernet_keys(settings):
    """Switch FERNET_KEYS for a test: `use_fernet_keys(["new", "old"])`.

    fernet_fields caches the keys per field instance; the caches are cleared on each switch
    and again after the test (the `settings` fixture restores FERNET_KEYS).
    """

    def switch(keys: list[str]) -> None:
        settings.FERNET_KEYS = keys
        clear_fernet_caches()

    yield switch
    clear_fernet_caches()


@pytest.fixture
def receiver():
    """A real local HTTP receiver (tests/webhooks/receiver.py) for webhook deliveries."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _empty_call_log():
    """Each test starts and ends with an empty provider call-log buffer (integrations/calllog.py):
    records a test leaves behind must not be written into another test's database."""
    from integrations.calllog import call_log

    call_log.discard()
    yield
    call_log.discard()
