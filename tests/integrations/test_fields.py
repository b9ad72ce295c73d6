from io import StringIO

import pytest
from cryptography.fernet import InvalidToken
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.models import Integration
from tests.integrations.conftest import SENTINEL
from tests.integrations.factories import IntegrationFactory

pytestmark = pytest.mark.django_db


def raw_credentials(integration) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations WHERE id = %s", [integration.pk.hex])
        row = cursor.fetchone()
        if row is None:  # PostgreSQL stores the uuid natively
            cursor.execute("SELECT credentials FROM integrations WHERE id = %s", [integration.pk])
            row = cursor.fetchone()
    return bytes(row[0])


def test_column_holds_ciphertext():
    integration = IntegrationFactory(credentials={"api_key": SENTINEL})
    raw = raw_credentials(integration)
    assert SENTINEL.encode() not in raw
    assert b"api_key" not in raw
    assert raw.startswith(b"gAAAAA")  # a Fernet token
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": SENTINEL}


def test_rows_under_old_key_read_after_new_key_is_prepended_and_after_reencrypt_old_key_goes(use_fernet_keys):
    use_fernet_keys(["old-key"])
    integration = IntegrationFactory(credentials={"api_key": SENTINEL})
    under_old = raw_credentials(integration)

    use_fernet_keys(["new-key", "old-key"])
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": SENTINEL}

    # Without re-encryption, dropping the old key makes the credentials unreadable; the row still loads.
    use_fernet_keys(["new-key"])
    unreadable = Integration.objects.get(pk=integration.pk)
    assert unreadable.credentials_readable is False
    with pytest.raises(InvalidToken):
        unreadable.credentials.get("api_key")

    use_fernet_keys(["new-key", "old-key"])
    out = StringIO()
    call_command("reencrypt_credentials", "--batch-size", "1", stdout=out)
    assert "integrations: 1/1 re-encrypted" in out.getvalue()
    assert raw_credentials(integration) != under_old

    use_fernet_keys(["new-key"])
    assert Integration.objects.get(pk=integration.pk).credentials == {"api_key": SENTINEL}


def test_reencrypt_in_batches_is_safe_to_rerun_and_keeps_updated_at(use_fernet_keys):
    use_fernet_keys(["old-key"])
    rows = [IntegrationFactory(credentials={"api_key": f"k{i}"}) for i in range(5)]
    use_fernet_keys(["new-key", "old-key"])
    for _ in range(2):
        out = StringIO()
        call_command("reencrypt_credentials", "--batch-size", "2", stdout=out)
        lines = out.getvalue().splitlines()
        assert "integrations: 2/5 re-encrypted" in lines
        assert "integrations: 5/5 re-encrypted" in lines
    use_fernet_keys(["new-key"])
    for row in rows:
        fresh = Integration.objects.get(pk=row.pk)
        assert fresh.credentials == row.credentials
        assert fresh.updated_at == row.updated_at


def test_reencrypt_fails_with_one_line_when_a_row_has_an_unknown_key(use_fernet_keys):
    use_fernet_keys(["lost-key"])
    IntegrationFactory(credentials={"api_key": SENTINEL})
    use_fernet_keys(["new-key"])
    with pytest.raises(CommandError) as excinfo:
        call_command("reencrypt_credentials", stdout=StringIO())
    message = str(excinfo.value)
    assert "\n" not in message
    assert "cannot be decrypted" in message
    assert SENTINEL not in message


def test_dumpdata_does_not_write_secrets():
    IntegrationFactory(credentials={"api_key": SENTINEL})
    out = StringIO()
    call_command("dumpdata", "integrations", stdout=out)
    assert SENTINEL not in out.getvalue()
