"""The SAML 2.0 bearer assertion grant (RFC 7522, integrations/grants/saml_bearer.py).

Against a real local authorization server (tests/integrations/saml_helpers.py `TokenServer`)
that verifies each assertion's XML signature with signxml's XMLVerifier and the certificate
it trusts, then its issuer, subject, bearer confirmation, recipient, audience and expiry.
"""

import base64
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone
from lxml import etree

from common.exceptions import ApplicationError, UpstreamError
from health.checks import DEGRADED, HEALTHY, UNHEALTHY, check_integration
from integrations.grants.saml_bearer import GRANT_TYPE
from integrations.models import ConnectionIssue, Integration
from integrations.oauth.client import OAuthError
from integrations.oauth.tokens import ReauthorizationRequired, get_access_token
from integrations.services import integration_create
from tests.api_errors import field_errors
from tests.concurrency import tokens_at_once
from tests.integrations.saml_helpers import KeyPair, TokenServer, key_pair, metadata_xml
from tests.integrations.test_fields import raw_credentials
from tests.webhooks.receiver import Receiver, Reply

pytestmark = pytest.mark.django_db

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
ISSUER = "https://ats.example.test"
SUBJECT = "integration-user@acme.test"


@pytest.fixture
def ours():
    """Our key pair: the authorization server trusts its certificate."""
    return key_pair(label="client", common_name="ats.example.test")


@pytest.fixture
def server(ours):
    token_server = TokenServer(trusted_cert_pem=ours.cert_pem, issuer=ISSUER, subject=SUBJECT).start()
    yield token_server
    token_server.stop()


def bearer(organization, server, pair, *, name="SAML bearer", credentials=None, **config):
    return integration_create(
        organization=organization,
        name=name,
        provider="custom",
        auth_type="saml",
        config={
            "idp_metadata": metadata_xml(),
            "token_url": server.url,
            "issuer": ISSUER,
            "subject": SUBJECT,
            "scopes": ["candidates.read", "jobs.read"],
            **config,
        },
        credentials={"private_key": pair.key_pem, "certificate": pair.cert_pem, **(credentials or {})},
    )


def assertion_of(request: dict) -> etree._Element:
    encoded = request["form"]["assertion"]
    return etree.fromstring(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- minting ------------------------------------------------------------------------------


def test_a_token_is_minted_through_get_access_token_and_stored_encrypted(organization, server, ours):
    integration = bearer(organization, server, ours)
    assert get_access_token(integration) == "minted-1"
    assert server.refusals == [] and server.minted == 1
    [request] = server.requests
    assert request["form"]["grant_type"] == GRANT_TYPE
    assert request["form"]["scope"] == "candidates.read jobs.read"
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "minted-1"
    assert b"minted-1" not in raw_credentials(integration)
    assert timezone.now() + timedelta(minutes=59) < integration.token_expires_at <= timezone.now() + timedelta(hours=1)
    assert integration.granted_scopes == ["candidates.read", "jobs.read"]
    assert (integration.token_refresh_attempts, integration.token_refresh_failures) == (1, 0)
    assert integration.last_token_refresh_at is not None


def test_the_token_is_reused_until_close_to_expiry_then_minted_again(organization, server, ours):
    integration = bearer(organization, server, ours)
    assert get_access_token(integration) == "minted-1"
    assert get_access_token(integration) == "minted-1"
    assert len(server.requests) == 1
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=timezone.now() + timedelta(minutes=2))
    integration.refresh_from_db()
    assert get_access_token(integration) == "minted-2"  # within the 5-minute margin: a new assertion
    assert len(server.requests) == 2
    first, second = (assertion_of(request).get("ID") for request in server.requests)
    assert first != second


def test_the_refresh_endpoint_mints_now(api_client, organization, server, ours):
    integration = bearer(organization, server, ours)
    response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code == HTTPStatus.OK, response.json()
    assert response.json()["token_expires_at"]
    assert server.minted == 1


def test_the_assertion_is_what_rfc_7522_asks_for(organization, server, ours):
    integration = bearer(organization, server, ours, assertion_lifetime_seconds=120)
    get_access_token(integration)
    encoded = server.requests[0]["form"]["assertion"]
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded  # base64url, unpadded
    assertion = assertion_of(server.requests[0])
    # The SAML schema's order: Issuer, then the signature, then Subject, Conditions, statements.
    assert [child.tag for child in assertion] == [
        f"{{{SAML}}}Issuer",
        f"{{{DS}}}Signature",
        f"{{{SAML}}}Subject",
        f"{{{SAML}}}Conditions",
        f"{{{SAML}}}AuthnStatement",
    ]
    signature = assertion.find(f"{{{DS}}}Signature")
    assert signature.find(f".//{{{DS}}}Reference").get("URI") == "#" + assertion.get("ID")
    method = signature.find(f".//{{{DS}}}SignatureMethod").get("Algorithm")
    assert method == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    enveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    assert enveloped in [t.get("Algorithm") for t in signature.iter(f"{{{DS}}}Transform")]
    issued = instant(assertion.get("IssueInstant"))
    conditions = assertion.find(f"{{{SAML}}}Conditions")
    assert instant(conditions.get("NotOnOrAfter")) - issued == timedelta(seconds=120)
    assert assertion.find(f".//{{{SAML}}}Audience").text == server.url  # default: the token URL


def test_a_configured_audience_is_used(organization, server, ours):
    server.audience = "https://auth.example.test"
    integration = bearer(organization, server, ours, audience="https://auth.example.test")
    assert get_access_token(integration) == "minted-1"


def test_client_authentication_is_sent_as_configured(organization, server, ours):
    basic = bearer(
        organization,
        server,
        ours,
        name="basic",
        client_id="ats-client",
        token_auth_method="client_secret_basic",
        credentials={"client_secret": "s3cret-value"},
    )
    posted = bearer(organization, server, ours, name="post", client_id="ats-client", credentials={"client_secret": "p"})
    get_access_token(basic)
    get_access_token(posted)
    first, second = server.requests
    assert first["headers"]["Authorization"] == "Basic " + base64.b64encode(b"ats-client:s3cret-value").decode()
    assert "client_secret" not in first["form"]
    assert (second["form"]["client_id"], second["form"]["client_secret"]) == ("ats-client", "p")
    assert "Authorization" not in second["headers"]


# --- failures -----------------------------------------------------------------------------


def test_a_server_trusting_another_certificate_answers_invalid_grant_which_is_terminal(organization, ours):
    other = key_pair(label="someone-else")
    server = TokenServer(trusted_cert_pem=other.cert_pem, issuer=ISSUER, subject=SUBJECT).start()
    try:
        integration = bearer(organization, server, ours)
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
        assert "Signature verification failed" in server.refusals[0]  # the server really verified it
        integration.refresh_from_db()
        assert integration.needs_reauthorization is True
        assert integration.status == Integration.Status.ERROR
        assert "invalid_grant" in integration.last_error
        assert (integration.token_refresh_attempts, integration.token_refresh_failures) == (1, 1)
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
        assert len(server.requests) == 1  # no retry storm on a dead grant
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("config", "refusal"),
    [
        ({"audience": "https://somewhere-else.example.test"}, "audience"),
        ({"issuer": "https://impostor.example.test"}, "issuer"),
        ({"subject": "someone-else@acme.test"}, "subject"),
    ],
)
def test_the_server_checks_what_the_assertion_says(organization, server, ours, config, refusal):
    integration = bearer(organization, server, ours, **config)
    with pytest.raises(ReauthorizationRequired):
        get_access_token(integration)
    assert refusal in server.refusals[0]


def test_a_server_failure_is_upstream_and_backs_off(organization, server, ours):
    server.reply = (HTTPStatus.SERVICE_UNAVAILABLE, {})
    integration = bearer(organization, server, ours)
    with pytest.raises(UpstreamError, match="HTTP 503"):
        get_access_token(integration)
    integration.refresh_from_db()
    assert integration.needs_reauthorization is False
    assert integration.refresh_retry_at is not None and integration.refresh_failure_count == 1


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client"])
def test_a_refused_client_is_not_terminal_and_is_credentials_rejected(organization, server, ours, error):
    server.reply = (HTTPStatus.UNAUTHORIZED, {"error": error, "error_description": "unknown client"})
    integration = bearer(organization, server, ours)
    with pytest.raises(OAuthError) as caught:
        get_access_token(integration)
    assert caught.value.error == error and not caught.value.is_terminal
    integration.refresh_from_db()
    assert integration.needs_reauthorization is False and integration.refresh_retry_at is not None
    issue = ConnectionIssue.objects.get(integration=integration)
    assert (issue.kind, issue.status, issue.details["error"]) == ("credentials_rejected", "open", error)
    assert "credentials.client_secret" in issue.message


def test_the_assertion_and_secrets_never_reach_last_error(organization, server, ours):
    server.reply = lambda form: (
        HTTPStatus.BAD_REQUEST,
        {"error": "invalid_request", "error_description": f"bad {form['assertion']} for {form['client_secret']}"},
    )
    integration = bearer(organization, server, ours, client_id="ats", credentials={"client_secret": "CLIENT-SECRET-1"})
    with pytest.raises(OAuthError) as caught:
        get_access_token(integration)
    assertion = server.requests[0]["form"]["assertion"]
    integration.refresh_from_db()
    for text in (caught.value.message, integration.last_error):
        assert assertion[:40] not in text and "CLIENT-SECRET-1" not in text
        assert "[redacted]" in text


def test_the_assertion_xml_and_its_signature_never_reach_errors(organization, server, ours):
    """An endpoint that echoes the decoded assertion (or just its SignatureValue) shows
    neither in the error: only the base64url form used to be hidden."""

    def echo(form):
        padded = form["assertion"] + "=" * (-len(form["assertion"]) % 4)
        xml = base64.urlsafe_b64decode(padded).decode()
        signature = etree.fromstring(xml.encode()).findtext(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
        echoed["xml"], echoed["signature"] = xml, "".join(signature.split())
        return HTTPStatus.BAD_REQUEST, {"error": "invalid_request", "error_description": f"{signature} in {xml}"}

    echoed: dict[str, str] = {}
    server.reply = echo
    integration = bearer(organization, server, ours)
    with pytest.raises(OAuthError) as caught:
        get_access_token(integration)
    integration.refresh_from_db()
    for text in (caught.value.message, integration.last_error):
        assert echoed["signature"][:24] not in "".join(text.split())
        assert "saml:Assertion" not in text and "[redacted] in [redacted]" in text


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_mint_exactly_once(organization, server, ours):
    """Two threads want a token at once: one mints under the row lock, the other re-reads it."""
    server.delay = 0.5  # hold the lock long enough for the other thread to queue behind it
    integration = bearer(organization, server, ours)
    results = tokens_at_once(integration.pk)
    assert results == ["minted-1", "minted-1"]
    assert server.minted == 1
    integration.refresh_from_db()
    assert integration.token_refresh_attempts == 1


# --- health -------------------------------------------------------------------------------


def test_with_the_bearer_grant_health_mints_and_calls_the_health_check_url(organization, server, ours):
    receiver = Receiver().start()
    try:
        integration = bearer(organization, server, ours, health_check_url=receiver.url)
        result = check_integration(integration)
        assert result.status == HEALTHY, result.error
        assert result.http_status == HTTPStatus.OK
        [call] = receiver.requests
        assert call.headers["authorization"] == "Bearer minted-1"
        receiver.default = Reply(status=HTTPStatus.UNAUTHORIZED)
        result = check_integration(integration)
        assert result.status == UNHEALTHY and "HTTP 401" in result.error
        assert server.minted == 1  # the stored token was reused
    finally:
        receiver.stop()


def test_without_a_health_check_url_a_minted_token_is_healthy(organization, server, ours):
    result = check_integration(bearer(organization, server, ours))
    assert (result.status, result.error) == (HEALTHY, "")
    assert server.minted == 1


def active_kinds(integration) -> dict[str, str]:
    return dict(
        ConnectionIssue.objects.filter(integration=integration, status__in=["pending", "open"]).values_list(
            "kind", "status"
        )
    )


def test_a_refused_grant_is_unhealthy_reauthorization_required(organization, server, ours):
    server.reply = (HTTPStatus.BAD_REQUEST, {"error": "invalid_grant", "error_description": "unknown signer"})
    integration = bearer(organization, server, ours)
    result = check_integration(integration)
    # The mint recorded the issue itself (integrations/detectors.py): the check does not count it again.
    assert (result.status, result.issue_kind) == (UNHEALTHY, "")
    assert "invalid_grant" in result.error
    assert active_kinds(integration) == {"reauthorization_required": "open"}


def test_an_unavailable_token_server_is_unhealthy_provider_unavailable(organization, server, ours):
    server.reply = (HTTPStatus.BAD_GATEWAY, {})
    integration = bearer(organization, server, ours)
    result = check_integration(integration)
    assert (result.status, result.issue_kind) == (UNHEALTHY, "")  # recorded by the mint, once
    assert active_kinds(integration) == {"provider_unavailable": "pending"}  # transient: opens after N


def test_our_own_certificate_near_expiry_is_degraded_and_expired_is_unhealthy(organization):
    soon = key_pair(label="client", valid_for=timedelta(days=12))
    server = TokenServer(trusted_cert_pem=soon.cert_pem, issuer=ISSUER, subject=SUBJECT).start()
    try:
        result = check_integration(bearer(organization, server, soon))
        assert (result.status, result.issue_kind) == (DEGRADED, "certificate_expiring")
        assert result.issue_details["certificate"] == "saml_bearer"
        assert result.issue_details["days_left"] == 12
        assert "register a new certificate" in result.error
        assert server.minted == 1  # still minting meanwhile
    finally:
        server.stop()
    expired = key_pair(label="client", valid_for=timedelta(days=-1), valid_since=timedelta(days=30))
    integration = bearer(organization, server, expired, name="expired")
    result = check_integration(integration)
    assert (result.status, result.issue_kind) == (UNHEALTHY, "certificate_expiring")


# --- validation at create/update ----------------------------------------------------------


def create(api_client, server, pair, *, config=None, credentials=None, provider="custom"):
    """POST a SAML bearer integration; a None in `config` or `credentials` leaves that key out."""
    base_config = {"token_url": server.url, "issuer": ISSUER, "subject": SUBJECT, "idp_metadata": metadata_xml()}
    if provider == "workday":
        base_config["tenant"] = "acme"
    config = {**base_config, **(config or {})}
    credentials = {"private_key": pair.key_pem, "certificate": pair.cert_pem, **(credentials or {})}
    return api_client.post(
        "/api/integrations/",
        {
            "name": "bearer",
            "provider": provider,
            "auth_type": "saml",
            "config": {key: value for key, value in config.items() if value is not None},
            "credentials": {key: value for key, value in credentials.items() if value is not None},
        },
        format="json",
    )


def ec_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def encrypted_key_pem(pair) -> str:
    key = serialization.load_pem_private_key(pair.key_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()


def test_a_complete_bearer_configuration_is_created_active(api_client, server, ours):
    response = create(api_client, server, ours)
    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["status"] == "active"
    assert sorted(response.json()["credential_fields"]) == ["certificate", "private_key"]
    assert ours.key_pem not in response.content.decode()


@pytest.mark.parametrize(
    ("config", "credentials", "where", "message"),
    [
        ({"issuer": None}, {}, ("config", "issuer"), "Required for the SAML bearer grant"),
        ({"subject": None}, {}, ("config", "subject"), "Required for the SAML bearer grant"),
        ({"assertion_lifetime_seconds": 0}, {}, ("config", "assertion_lifetime_seconds"), "positive integer"),
        ({"assertion_lifetime_seconds": "60"}, {}, ("config", "assertion_lifetime_seconds"), "positive integer"),
        ({"assertion_lifetime_seconds": 7200}, {}, ("config", "assertion_lifetime_seconds"), "At most 3600"),
        ({"token_url": "ftp://x"}, {}, ("config", "token_url"), "http(s) URL"),
        ({}, {"private_key": None}, ("credentials", "private_key"), "Required for the SAML bearer grant"),
        ({}, {"certificate": None}, ("credentials", "certificate"), "Required for the SAML bearer grant"),
        ({}, {"private_key": "not a key"}, ("credentials", "private_key"), "PEM-encoded private key"),
        ({}, {"certificate": "not a cert"}, ("credentials", "certificate"), "PEM-encoded X.509"),
        ({}, {"private_key": ec_key_pem()}, ("credentials", "private_key"), "RSA key"),
        ({}, {"certificate": key_pair(label="other").cert_pem}, ("credentials", "certificate"), "not the one of"),
    ],
    ids=[
        "issuer",
        "subject",
        "lifetime-0",
        "lifetime-str",
        "lifetime-long",
        "token-url",
        "no-key",
        "no-cert",
        "bad-key",
        "bad-cert",
        "ec-key",
        "cert-mismatch",
    ],
)
def test_bad_bearer_configuration_is_a_400_naming_the_field(
    api_client, server, ours, config, credentials, where, message
):
    response = create(api_client, server, ours, config=config, credentials=credentials)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.json()
    section, key = where
    assert message in " ".join(field_errors(response)[f"{section}.{key}"])
    assert ours.key_pem[40:80] not in response.content.decode()
    assert not Integration.objects.exists()


def test_an_encrypted_private_key_is_refused(api_client, server, ours):
    response = create(api_client, server, ours, credentials={"private_key": encrypted_key_pem(ours)})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "needs a password" in field_errors(response)["credentials.private_key"][0]


def test_workday_has_no_saml_bearer_grant(api_client, server, ours):
    """Workday's SAML is its SSO: nothing in its documentation offers RFC 7522 (docs/PROVIDERS.md)."""
    response = create(api_client, server, ours, provider="workday")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Unknown key for workday" in field_errors(response)["config.token_url"][0]


def test_a_metadata_only_custom_integration_does_not_mint(organization):
    integration = integration_create(
        organization=organization,
        name="sso",
        provider="custom",
        auth_type="saml",
        config={"idp_metadata": metadata_xml()},
        credentials={},
    )
    with pytest.raises(ApplicationError, match=r"set config\.token_url"):
        get_access_token(integration)


def test_assertion_times_are_utc_instants(organization, server, ours):
    get_access_token(bearer(organization, server, ours))
    issued = assertion_of(server.requests[0]).get("IssueInstant")
    assert issued.endswith("Z")
    assert abs(instant(issued) - datetime.now(UTC)) < timedelta(minutes=1)


# --- the procedure in docs/PROVIDERS.md ---------------------------------------------------


def test_the_key_pair_made_as_docs_providers_says_mints_a_token(organization, tmp_path):
    """Runs the `openssl` command of docs/PROVIDERS.md ("SAML") as written, then uses its files."""
    docs = (Path(__file__).resolve().parents[3] / "docs" / "PROVIDERS.md").read_text()
    [command] = [line for line in docs.splitlines() if line.startswith("openssl req ")]
    subprocess.run(shlex.split(command), cwd=tmp_path, check=True, capture_output=True, timeout=60)
    key_pem = (tmp_path / "saml-bearer.key").read_text()
    cert_pem = (tmp_path / "saml-bearer.crt").read_text()
    server = TokenServer(trusted_cert_pem=cert_pem, issuer=ISSUER, subject=SUBJECT).start()
    try:
        pair = KeyPair(key_pem=key_pem, cert_pem=cert_pem, cert_b64="", not_after=datetime.now(UTC))
        integration = bearer(organization, server, pair)  # validated as the API would
        assert get_access_token(integration) == "minted-1"
        assert server.refusals == []
    finally:
        server.stop()


def test_while_our_certificate_expires_the_health_check_url_still_clears_and_reports_issues(organization):
    """The endpoint's answer counts beside an expiring certificate (health/saml.py `_observed`):
    a rejection opens `credentials_rejected` without counting the certificate as renewed, and
    answers that work resolve the rejection while `certificate_expiring` stays open."""
    from health.services import health_record_results

    soon = key_pair(label="client", valid_for=timedelta(days=12))
    server = TokenServer(trusted_cert_pem=soon.cert_pem, issuer=ISSUER, subject=SUBJECT).start()
    api = Receiver().start()
    try:
        integration = bearer(organization, server, soon, health_check_url=api.url)

        def check(status: int) -> tuple[str, str]:
            api.default = Reply(status=status)
            result = check_integration(integration)
            health_record_results(results=[result])
            return result.status, result.issue_kind

        assert check(HTTPStatus.OK) == (DEGRADED, "certificate_expiring")
        assert active_kinds(integration) == {"certificate_expiring": "open"}
        assert check(HTTPStatus.UNAUTHORIZED) == (UNHEALTHY, "credentials_rejected")
        assert active_kinds(integration) == {"certificate_expiring": "open", "credentials_rejected": "open"}
        expiring = ConnectionIssue.objects.get(integration=integration, kind="certificate_expiring")
        assert expiring.count == 1  # seen beside the rejection, neither counted nor cleared
        for _ in range(3):
            assert check(HTTPStatus.OK) == (DEGRADED, "certificate_expiring")
        assert active_kinds(integration) == {"certificate_expiring": "open"}
        assert server.minted == 1
    finally:
        api.stop()
        server.stop()


def test_a_token_server_outage_seen_by_health_checks_opens_once_and_is_not_cleared_by_the_metadata(
    organization, server, ours
):
    """The mint records its failure (integrations/detectors.py); the metadata loading fine
    beside it must not count as a recovery of that outage."""
    from health.services import health_record_results

    server.reply = (HTTPStatus.BAD_GATEWAY, {})
    integration = bearer(organization, server, ours)
    for _ in range(3):
        result = check_integration(integration)
        health_record_results(results=[result])
        Integration.objects.filter(pk=integration.pk).update(refresh_retry_at=None)  # past the backoff
        integration.refresh_from_db()
    assert active_kinds(integration) == {"provider_unavailable": "open"}
    assert ConnectionIssue.objects.get(integration=integration, kind="provider_unavailable").count == 3
