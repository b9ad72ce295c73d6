"""Subscriber authentication against real local servers: an OAuth2 client-credentials token
endpoint, a receiver that checks the bearer token, and an HTTPS receiver requiring a client
certificate (mTLS)."""

import datetime as dt
import json
import logging
import os
import socket
import stat
import threading
import time
from http import HTTPStatus

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.concurrency import Concurrently
from tests.webhooks.helpers import make_due
from tests.webhooks.receiver import Receiver, Reply
from webhooks import tasks
from webhooks.engine import flow, loop, subscriber_auth
from webhooks.engine.policy import Outcome
from webhooks.models import Delivery, SubscriberToken, Webhook, WebhookLog
from webhooks.services import trigger_event, webhook_create, webhook_update

from .subscriber_servers import TokenServer, issue, make_ca, server_context

# The drain loop reads and fetches tokens in its send threads (their own connections).
pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_SECRET = "s3cret-client-value-0123456789"


@pytest.fixture
def token_server():
    server = TokenServer(client_id="our-client", client_secret=CLIENT_SECRET)
    yield server
    server.stop()


def auth_for(token_server, **extra):
    return {
        "type": "oauth2_client_credentials",
        "token_url": token_server.url,
        "client_id": "our-client",
        "client_secret": CLIENT_SECRET,
        **extra,
    }


def checks_bearer(token_server):
    """The receiver accepts only the newest token the token server issued."""

    def respond(received):
        valid = token_server.issued[-1:] or ["-"]
        ok = received.headers.get("authorization") == f"Bearer {valid[0]}"
        return Reply(status=200 if ok else 401, body=b"ok" if ok else b"bad token")

    return respond


def test_deliveries_carry_a_cached_bearer_token(organization, receiver, token_server):
    webhook_create(
        organization=organization,
        name="oauth",
        url=receiver.url,
        events=["*"],
        auth=auth_for(token_server, scope="webhooks:write", audience="https://hooks.example.com"),
    )
    receiver.responder = checks_bearer(token_server)
    for _ in range(3):
        trigger_event(organization=organization, event="job.created", payload={})
        assert tasks.deliver_due() == 1
    assert [r.headers["authorization"] for r in receiver.wait_for(3)] == [f"Bearer {token_server.issued[0]}"] * 3
    assert len(token_server.issued) == 1  # fetched once, then cached
    assert token_server.grants[0] == {
        "grant_type": ["client_credentials"],
        "scope": ["webhooks:write"],
        "audience": ["https://hooks.example.com"],
    }
    assert WebhookLog.objects.filter(success=True).count() == 3
    for log in WebhookLog.objects.all():
        assert log.request_headers["Authorization"] == "[redacted]"
        assert token_server.issued[0] not in json.dumps(log.request_headers)
    stored = SubscriberToken.objects.values_list("access_token", flat=True).get()
    assert stored == token_server.issued[0]  # encrypted at rest: the column holds ciphertext
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM webhook_subscriber_tokens")
        raw = bytes(cursor.fetchone()[0])
    assert token_server.issued[0].encode() not in raw


def test_an_expired_token_is_fetched_again(organization, receiver, token_server):
    webhook_create(organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth_for(token_server))
    receiver.responder = checks_bearer(token_server)
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    SubscriberToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    assert len(token_server.issued) == 2
    assert receiver.wait_for(2)[1].headers["authorization"] == f"Bearer {token_server.issued[1]}"


def test_a_token_expiring_soon_is_refreshed_before_it_expires(token_server):
    token_server.expires_in = 100
    token, seconds = subscriber_auth.fetch_token(auth_for(token_server))
    assert token == token_server.issued[0] and seconds == 90  # a tenth of its life early


def test_a_401_drops_the_token_and_the_retry_fetches_a_new_one(organization, receiver, token_server):
    webhook_create(organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth_for(token_server))
    receiver.responder = checks_bearer(token_server)
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    # The subscriber revokes the token: its newest valid token is one we never got.
    token_server.issued.append("revoked-elsewhere")
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    failed = WebhookLog.objects.filter(success=False).get()
    assert failed.response_status == HTTPStatus.UNAUTHORIZED
    assert SubscriberToken.objects.get().access_token is None  # dropped
    make_due()
    assert tasks.deliver_due() == 1
    assert len(token_server.issued) == 3  # a new token was fetched for the retry
    assert receiver.wait_for(3)[-1].headers["authorization"] == f"Bearer {token_server.issued[2]}"
    assert Delivery.objects.filter(state=Delivery.State.SUCCEEDED).count() == 2


def test_a_token_endpoint_failure_fails_that_delivery_with_a_clear_error(organization, receiver, token_server, caplog):
    caplog.set_level(logging.DEBUG)
    auth = auth_for(token_server, client_secret="wrong-secret-value-987654")
    webhook_create(organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth)
    webhook_create(organization=organization, name="plain", url=receiver.url, events=["*"])
    trigger_event(organization=organization, event="job.created", payload={})
    assert tasks.deliver_due() == 2
    assert len(receiver.wait_for(1)) == 1  # the other webhook's delivery went out
    log = WebhookLog.objects.get(success=False)
    assert log.error == "Token endpoint answered HTTP 401 (invalid_client)."
    assert log.response_status is None
    everything = log.error + json.dumps(log.request_headers) + log.response_body
    everything += " ".join(r.getMessage() for r in caplog.records)
    assert "wrong-secret-value-987654" not in everything and "Basic" not in everything
    # the endpoint down: a connection error, said as such
    token_server.stop()
    make_due()
    tasks.deliver_due()
    assert WebhookLog.objects.filter(success=False).latest("created_at").error.startswith("Token endpoint: ")


def test_two_workers_wanting_a_token_at_once_fetch_it_once(organization, receiver, token_server, transactional_db):
    token_server.delay = 0.5  # a slow token endpoint: the storm window
    webhook = webhook_create(
        organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth_for(token_server)
    )
    auth = Webhook.objects.get(pk=webhook.pk).auth
    tokens: list[str] = []
    with Concurrently(*[lambda: tokens.append(subscriber_auth.bearer_token(webhook.pk, auth)[0])] * 2):
        pass
    assert len(token_server.grants) == 1
    assert tokens == [token_server.issued[0]] * 2


def test_changing_the_auth_settings_drops_the_cached_token(organization, receiver, token_server):
    webhook = webhook_create(
        organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth_for(token_server)
    )
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    assert SubscriberToken.objects.exists()
    webhook_update(webhook=webhook, auth={**auth_for(token_server), "scope": "other"})
    assert not SubscriberToken.objects.exists()


# --- the API ------------------------------------------------------------------------------


def test_the_client_secret_is_write_only_and_kept_by_updates(api_client, receiver, token_server):
    created = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "n", "url": receiver.url, "events": ["*"], "auth": auth_for(token_server, scope="a")},
        format="json",
    )
    assert created.status_code == HTTPStatus.CREATED, created.json()
    assert CLIENT_SECRET not in created.content.decode()
    url = f"/api/integrations/webhooks/{created.json()['id']}/"
    shown = api_client.get(url).json()["auth"]
    assert shown == {
        "type": "oauth2_client_credentials",
        "token_url": token_server.url,
        "client_id": "our-client",
        "scope": "a",
        "client_secret_set": True,
    }
    # an update without client_secret keeps it
    changed = {k: v for k, v in auth_for(token_server, scope="b").items() if k != "client_secret"}
    response = api_client.patch(url, {"auth": changed}, format="json")
    assert response.status_code == HTTPStatus.OK, response.json()
    assert Webhook.objects.get().auth["client_secret"] == CLIENT_SECRET
    assert Webhook.objects.get().auth["scope"] == "b"
    # ...but not when the token URL moves to another host
    moved = {**changed, "token_url": "http://localhost:9/token"}
    response = api_client.patch(url, {"auth": moved}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "enter the client secret again" in response.json()["errors"]["auth"][0]
    # nor the webhook URL to another host without auth sent again
    response = api_client.patch(url, {"url": "http://localhost:9/hook"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "send auth again with its client_secret" in response.json()["errors"]["auth"][0]
    assert api_client.patch(url, {"auth": None}, format="json").json()["auth"] is None


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"type": "basic"}, 'the only type is "oauth2_client_credentials"'),
        ({"type": "oauth2_client_credentials", "client_id": "x", "client_secret": "y"}, "token_url: required"),
        (
            {"type": "oauth2_client_credentials", "token_url": "ftp://x/", "client_id": "x", "client_secret": "y"},
            "token_url: The URL must be http:// or https://",
        ),
        ({"type": "oauth2_client_credentials", "token_url": "https://a.test/", "client_id": "x"}, "client_secret"),
        ({"type": "oauth2_client_credentials", "extra": 1}, "Unknown keys: extra"),
        ("a string", "An object"),
    ],
)
def test_invalid_auth_settings_are_a_400(api_client, receiver, auth, message):
    response = api_client.post(
        "/api/integrations/webhooks/", {"name": "n", "url": receiver.url, "events": ["*"], "auth": auth}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.json()["errors"]["auth"][0]


# --- mTLS -----------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path):
    ca = make_ca()
    return {"ca": ca, "server": issue(ca, "receiver", server=True), "client": issue(ca, "our-client", server=False)}


@pytest.fixture
def tls_receiver(pki, tmp_path, settings):
    receiver = Receiver()
    context = server_context(pki["ca"], pki["server"], tmp_path)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    receiver.start()
    settings.WEBHOOKS_CA_BUNDLE = str(tmp_path / "ca.pem")
    yield receiver
    receiver.stop()


def https_url(receiver) -> str:
    return receiver.url.replace("http://", "https://")


def test_a_client_certificate_is_presented_to_an_mtls_receiver(organization, pki, tls_receiver):
    with_certificate = webhook_create(
        organization=organization,
        name="mtls",
        url=https_url(tls_receiver),
        events=["*"],
        client_certificate=pki["client"].pem,
    )
    without = webhook_create(organization=organization, name="no-cert", url=https_url(tls_receiver), events=["*"])
    trigger_event(organization=organization, event="job.created", payload={"a": 1})
    assert tasks.deliver_due() == 2
    [received] = tls_receiver.wait_for(1)
    assert json.loads(received.body)["data"] == {"a": 1}
    assert WebhookLog.objects.get(webhook=with_certificate).success
    refused = WebhookLog.objects.get(webhook=without)
    assert not refused.success and refused.error  # the receiver refused the handshake
    assert with_certificate.client_certificate_expires_at == pki["client"].certificate.not_valid_after_utc
    # the key file is private to the worker
    _digest, path = subscriber_auth._files[with_certificate.pk]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


def test_the_client_certificate_is_write_only(api_client, pki, receiver):
    response = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "n", "url": receiver.url, "events": ["*"], "client_certificate": pki["client"].pem},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED, response.json()
    url = f"/api/integrations/webhooks/{response.json()['id']}/"
    for body in (response.content.decode(), api_client.get(url).content.decode()):
        assert "PRIVATE KEY" not in body and "BEGIN CERTIFICATE" not in body
    shown = api_client.get(url).json()
    assert shown["client_certificate_set"] is True and shown["client_certificate_expires_at"]
    assert "client_certificate" not in shown
    cleared = api_client.patch(url, {"client_certificate": None}, format="json").json()
    assert cleared["client_certificate_set"] is False
    assert Webhook.objects.get().client_certificate is None


def test_invalid_client_certificates_are_a_400(api_client, pki, receiver):
    other = issue(pki["ca"], "other", server=False)
    expired = issue(
        pki["ca"],
        "old",
        server=False,
        not_before=timezone.now() - dt.timedelta(days=3),
        not_after=timezone.now() - dt.timedelta(days=1),
    )
    cases = [
        ("not a pem", "No PEM certificate found"),
        (pki["client"].cert_pem(), "No PEM private key found"),
        (pki["client"].cert_pem() + other.key_pem(), "does not match the certificate"),
        (expired.pem, "The certificate expired on"),
        (pki["client"].cert_pem() + "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "cannot be read"),
    ]
    for pem, message in cases:
        response = api_client.post(
            "/api/integrations/webhooks/",
            {"name": "n", "url": receiver.url, "events": ["*"], "client_certificate": pem},
            format="json",
        )
        assert response.status_code == HTTPStatus.BAD_REQUEST, message
        assert message in response.json()["errors"]["client_certificate"][0]
        key_lines = [line for line in pem.splitlines() if len(line) > 20 and not line.startswith("-----")]
        assert not any(line in response.content.decode() for line in key_lines)  # nothing echoed
    assert not Webhook.objects.exists()


def test_undecryptable_auth_fails_only_that_webhooks_deliveries(organization, receiver, token_server):
    from cryptography.fernet import Fernet

    from common.encryption import _write_tokens

    broken = webhook_create(
        organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth_for(token_server)
    )
    webhook_create(organization=organization, name="plain", url=receiver.url, events=["*"])
    _write_tokens(Webhook, broken.pk, {"auth": Fernet(Fernet.generate_key()).encrypt(b"{}")})
    trigger_event(organization=organization, event="job.created", payload={})
    assert tasks.deliver_due() == 2
    assert len(receiver.wait_for(1)) == 1
    assert WebhookLog.objects.get(webhook=broken).error == subscriber_auth.UNREADABLE_AUTH
    assert token_server.grants == []
    # moving the URL needs the settings again, and says so (no 500)
    with pytest.raises(ValidationError, match="send auth again"):
        webhook_update(webhook=broken, url="http://localhost:9/elsewhere")


def test_the_token_url_follows_the_ssrf_rules_at_save_and_at_connect_time(
    organization, receiver, token_server, settings, api_client
):
    settings.ALLOW_PRIVATE_URLS = False
    response = api_client.post(
        "/api/integrations/webhooks/",
        {"name": "n", "url": "https://hooks.example.com/in", "events": ["*"], "auth": auth_for(token_server)},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "token_url: The URL resolves to a loopback" in response.json()["errors"]["auth"][0]
    # saved while private URLs were allowed: refused when connecting
    settings.ALLOW_PRIVATE_URLS = True
    webhook_create(organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth_for(token_server))
    settings.ALLOW_PRIVATE_URLS = False
    trigger_event(organization=organization, event="job.created", payload={})
    tasks.deliver_due()
    assert (
        WebhookLog.objects.get().error
        == "Token endpoint: Refused: the destination address is not public (SSRF protection)."
    )
    assert token_server.grants == []


# --- off the drain loop's thread ---------------------------------------------------------------


class SilentTokenEndpoint:
    """Accepts connections, reads what comes, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/oauth/token"

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def stop(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_token_endpoint_that_never_answers_delays_only_its_own_webhook(organization, receiver, settings):
    settings.WEBHOOKS_TIMEOUT = 2
    second = Receiver().start()
    silent = SilentTokenEndpoint()
    try:
        auth = {**auth_for(token_server=silent), "client_secret": CLIENT_SECRET}
        hanging = webhook_create(organization=organization, name="a", url=receiver.url, events=["*"], auth=auth)
        webhook_create(organization=organization, name="b", url=second.url, events=["*"])
        started = time.time()
        for n in range(5):
            trigger_event(organization=organization, event="job.created", payload={"n": n})
        loop.deliver_due(time_budget=10)
        arrivals = second.wait_for(5, timeout=5)
        # B's deliveries went out while A's token request hung (2 s timeout)
        assert max(r.at for r in arrivals) - started < 1.0
        assert silent.accepted and not receiver.requests
        errors = set(Delivery.objects.filter(webhook=hanging).values_list("last_error", flat=True))
        assert errors == {"Token endpoint: Timed out after 2 s."}
        assert set(Delivery.objects.filter(webhook=hanging).values_list("state", flat=True)) == {"pending"}
        logs = WebhookLog.objects.filter(webhook=hanging)
        assert logs.count() == 5 and CLIENT_SECRET not in json.dumps(list(logs.values()), default=str)
        # the failed fetch gave its refresh lease back: the retry fetches again
        assert SubscriberToken.objects.get(webhook=hanging).refreshing_until is None
    finally:
        silent.stop()
        second.stop()


def test_a_401_drops_the_token_its_claim_sent_never_a_newer_one(organization, receiver, token_server):
    """Two claims of one webhook in flight with different tokens: the older claim's 401
    must not drop the token the newer claim fetched."""
    webhook = webhook_create(
        organization=organization, name="oauth", url=receiver.url, events=["*"], auth=auth_for(token_server)
    )
    trigger_event(organization=organization, event="job.created", payload={})
    [delivery] = flow.claim_ready(limit=10).deliveries
    older, newer = timezone.now() - dt.timedelta(minutes=5), timezone.now()
    SubscriberToken.objects.create(
        webhook=webhook, access_token="newer-token", fetched_at=newer, expires_at=newer + dt.timedelta(hours=1)
    )
    recorder = loop._Recorder()
    recorder.started(delivery.lease_token, 1, {webhook.pk: subscriber_auth.SubscriberContext("older", older)})
    recorder.started("another-claim", 1, {webhook.pk: subscriber_auth.SubscriberContext("newer-token", newer)})
    outcome = Outcome(delivery=delivery, started_at=timezone.now(), status=401, request_headers={"a": "b"})
    recorder.finished(outcome)
    recorder.flush()
    row = SubscriberToken.objects.get(webhook=webhook)
    assert row.access_token == "newer-token" and row.fetched_at == newer
    assert Delivery.objects.get().state == Delivery.State.PENDING  # recorded: a retry
    assert list(recorder.subscribers) == ["another-claim"]  # the finished claim's are gone
    # the same claim's 401 with the token it sent does drop that one
    recorder.started(delivery.lease_token, 0, {webhook.pk: subscriber_auth.SubscriberContext("newer-token", newer)})
    loop._drop_rejected_tokens([outcome], recorder.subscribers[delivery.lease_token])
    assert SubscriberToken.objects.get(webhook=webhook).access_token is None
