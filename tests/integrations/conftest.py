import pytest

from integrations.fields import clear_fernet_caches

SENTINEL = "sentinel-SECRET-d41d8cd98f00b204"


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
