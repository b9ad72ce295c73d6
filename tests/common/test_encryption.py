"""Key rotation (common/encryption.py, `reencrypt_credentials`), as the README describes it."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from standardwebhooks import Webhook as ReferenceVerifier

from common.fields import clear_fernet_caches
from health.services import health_check_now
from integrations.models import Integration, OAuthState
from tests.health.conftest import custom
from tests.integrations.conftest import SENTINEL
from tests.webhooks.receiver import Receiver
from webhooks import tasks
from webhooks.models import Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create, webhook_rotate_secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def check() -> tuple[bool, str]:
    """`reencrypt_credentials --check`: (exit status 0?, everything it said)."""
    out = StringIO()
    try:
        call_command("reencrypt_credentials", "--check", stdout=out)
    except CommandError as error:
        return False, out.getvalue() + str(error)
    return True, out.getvalue()


def restart() -> None:
    # What a process restart does for FERNET_KEYS: fernet_fields reads the keys afresh.
    clear_fernet_caches()


def oauth_state(integration) -> OAuthState:
    return OAuthState.objects.create(
        integration=integration,
        organization=integration.organization,
        state_hash="a" * 64,
        code_verifier="verifier-" + SENTINEL,
        redirect_uri="http://127.0.0.1:8000/api/integrations/oauth/callback/",
        expires_at=timezone.now() + timedelta(minutes=10),
    )


def test_the_readme_rotation_steps_keep_webhooks_and_health_checks_working(organization, receiver, settings):
    settings.FERNET_KEYS = ["the-old-key"]
    restart()
    integration = custom(organization, receiver.url, key=SENTINEL, name="status page")
    state = oauth_state(integration)
    webhook = webhook_create(
        organization=organization, name="ATS", url=receiver.url, events=["*"], headers={"Authorization": "Bearer h-1"}
    )
    rotated = webhook_rotate_secret(webhook=webhook)  # a previous secret is encrypted too
    ok, said = check()
    assert ok and "All encrypted values use the first key" in said

    # 1. Prepend a new key.  2. Restart every process.
    settings.FERNET_KEYS = ["the-new-key", "the-old-key"]
    restart()
    ok, said = check()
    assert not ok
    assert "integrations.Integration.credentials: 1" in said
    assert "integrations.OAuthState.code_verifier: 1" in said
    assert "webhooks.Webhook.secret: 1" in said
    assert "webhooks.Webhook.previous_secret: 1" in said
    assert "webhooks.Webhook.headers: 1" in said
    assert "5 values need a key other than the first" in said

    # 3. Run reencrypt_credentials.
    out = StringIO()
    call_command("reencrypt_credentials", stdout=out)
    assert "webhooks: 1/1 re-encrypted" in out.getvalue()
    assert "integrations: 1/1 re-encrypted" in out.getvalue()
    assert "OAuth states: 1/1 re-encrypted" in out.getvalue()  # not Django's "o auth states"

    # 4. --check exits 0.
    ok, said = check()
    assert ok, said
    assert "All encrypted values use the first key of FERNET_KEYS" in said

    # 5. Drop the old key and restart every process.
    settings.FERNET_KEYS = ["the-new-key"]
    restart()
    assert check()[0]

    trigger_event(organization=organization, event="application.created", payload={"application_id": 1})
    assert tasks.deliver_due() == 1
    [request] = receiver.wait_for(1)
    assert ReferenceVerifier(rotated.secret).verify(request.body, request.headers)["type"] == "application.created"
    assert request.headers["authorization"] == "Bearer h-1"
    assert WebhookLog.objects.get().success is True

    record = health_check_now(integration=Integration.objects.get(pk=integration.pk))
    assert record.status == Integration.HealthStatus.HEALTHY, record.error
    assert OAuthState.objects.get(pk=state.pk).code_verifier == "verifier-" + SENTINEL
    assert Webhook.objects.get(pk=webhook.pk).previous_secret == webhook.secret


def test_check_counts_values_no_key_decrypts_and_changes_nothing(organization, use_fernet_keys):
    use_fernet_keys(["lost-key"])
    custom(organization, key=SENTINEL, name="lost")
    webhook_create(organization=organization, name="lost", url="http://127.0.0.1:9/hook", events=["*"])
    use_fernet_keys(["old-key"])
    custom(organization, key=SENTINEL, name="stale")
    use_fernet_keys(["new-key", "old-key"])
    custom(organization, key=SENTINEL, name="current")
    before = list(Integration.objects.order_by("name").values_list("name", "updated_at"))

    ok, said = check()
    assert not ok
    assert "needs an older key: integrations.Integration.credentials: 1" in said
    assert "cannot be decrypted: integrations.Integration.credentials: 1" in said
    assert "cannot be decrypted: webhooks.Webhook.secret: 1" in said
    assert "1 value needs a key other than the first" in said
    assert "cannot be decrypted: webhooks.Webhook.headers: 1" in said
    assert "3 values cannot be decrypted with FERNET_KEYS" in said
    assert "integrations: 3/3 checked" in said
    assert SENTINEL not in said
    assert list(Integration.objects.order_by("name").values_list("name", "updated_at")) == before
    # Nothing was re-encrypted: the stale row still needs the old key.
    use_fernet_keys(["new-key"])
    assert not Integration.objects.get(name="stale").credentials_readable


def test_reencrypt_rotates_what_it_can_then_fails_with_the_count(organization, use_fernet_keys):
    use_fernet_keys(["lost-key"])
    custom(organization, key=SENTINEL, name="lost")
    use_fernet_keys(["old-key"])
    custom(organization, key=SENTINEL, name="stale")
    use_fernet_keys(["new-key", "old-key"])
    with pytest.raises(CommandError) as excinfo:
        call_command("reencrypt_credentials", "--batch-size", "1", stdout=StringIO())
    message = str(excinfo.value)
    assert "\n" not in message and SENTINEL not in message
    assert "1 value cannot be decrypted with FERNET_KEYS" in message
    assert "integrations.Integration.credentials: 1" in message
    use_fernet_keys(["new-key"])
    assert Integration.objects.get(name="stale").credentials == {"api_key": SENTINEL}
    assert not Integration.objects.get(name="lost").credentials_readable


def test_check_with_no_encrypted_rows_says_all_current():
    ok, said = check()
    assert ok
    assert "All encrypted values use the first key of FERNET_KEYS." in said
