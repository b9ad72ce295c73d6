"""The JWT bearer grant (integrations/grants/jwt_bearer.py): against a real Authlib
authorization server for `custom`, against DocuSign's and Google's token endpoints
(mocked with their documented answers) for the catalogue providers."""

import json
import logging
import time
from datetime import timedelta
from http import HTTPStatus
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from django.utils import timezone

from common.exceptions import UpstreamError
from integrations.grants import consent_url
from integrations.grants.exchange import GrantConfigInvalid
from integrations.grants.jwt_bearer import GRANT_TYPE, jwt_request
from integrations.models import Integration
from integrations.oauth.tokens import ReauthorizationRequired, get_access_token, oauth_refresh_token
from integrations.services import integration_update
from tests.api_errors import field_errors
from tests.concurrency import tokens_at_once
from tests.integrations.grants.authorization_server import decoded_claims
from tests.integrations.grants.conftest import (
    DOCUSIGN_DEMO,
    DOCUSIGN_TOKEN_URL,
    DOCUSIGN_USER,
    INTEGRATION_KEY,
    SUBJECT,
    custom_jwt,
    docusign_jwt,
    google_jwt,
)
from tests.integrations.grants.keys import (
    GOOGLE_TOKEN_URL,
    SA_CLIENT_ID,
    SA_EMAIL,
    SA_KEY_ID,
    ec_pem,
    public_pem,
    rsa_pem,
)

pytestmark = pytest.mark.django_db

JSON = {"Content-Type": "application/json"}


def form(request) -> dict[str, str]:
    body = request.body if isinstance(request.body, str) else request.body.decode()
    return {key: values[0] for key, values in parse_qs(body).items()}


def token_answer(access="minted-access", expires_in=3600):
    return json.dumps({"access_token": access, "token_type": "Bearer", "expires_in": expires_in})


def pem_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if "-----" not in line and line]


# --- a real authorization server (Authlib's RFC 7523 grant) ------------------------------


def test_custom_integration_mints_a_token_the_authlib_server_issues(auth_server, organization):
    auth_server.register("acme-hiring", public_pem(rsa_pem()))
    integration = custom_jwt(organization, auth_server, config={"key_id": "key-2026"})
    assert integration.status == Integration.Status.ACTIVE

    token = get_access_token(integration)

    [issued] = auth_server.issued
    assert token == issued.access_token
    assert (issued.issuer, issued.subject, issued.scope) == ("acme-hiring", SUBJECT, "calendar")
    [request] = auth_server.token_requests
    assert request["grant_type"] == GRANT_TYPE == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert request["scope"] == "calendar"  # RFC 7523 section 2.1: a form parameter
    header = jwt.get_unverified_header(request["assertion"])
    assert (header["alg"], header["kid"]) == ("RS256", "key-2026")
    claims = decoded_claims(request["assertion"], public_pem(rsa_pem()))
    assert claims["iss"] == "acme-hiring"
    assert claims["sub"] == SUBJECT
    assert claims["aud"] == auth_server.token_url
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    assert abs(claims["iat"] - time.time()) < 60
    assert len(claims["jti"]) >= 16

    integration.refresh_from_db()
    assert integration.credentials["access_token"] == token  # stored encrypted, with its expiry
    assert timedelta(minutes=59) < integration.token_expires_at - timezone.now() <= timedelta(hours=1)
    assert (integration.token_refresh_attempts, integration.token_refresh_failures) == (1, 0)
    assert integration.last_token_refresh_at is not None
    assert integration.granted_scopes == ["calendar"]


def test_every_assertion_has_its_own_jti(auth_server, organization):
    integration = custom_jwt(organization, auth_server)
    first, second = jwt_request(integration), jwt_request(integration)
    claims = [jwt.decode(r.assertion, options={"verify_signature": False}) for r in (first, second)]
    assert claims[0]["jti"] != claims[1]["jti"]


def test_an_ec_key_signs_with_es256_and_the_server_verifies_it(auth_server, organization):
    auth_server.register("acme-hiring", public_pem(ec_pem()))
    integration = custom_jwt(organization, auth_server, credentials={"private_key": ec_pem()})
    token = get_access_token(integration)
    assert token == auth_server.issued[0].access_token
    assert jwt.get_unverified_header(auth_server.token_requests[0]["assertion"])["alg"] == "ES256"


def test_a_wrong_key_is_refused_by_the_server_and_is_terminal(auth_server, organization, caplog):
    auth_server.register("acme-hiring", public_pem(rsa_pem("registered")))
    integration = custom_jwt(organization, auth_server, credentials={"private_key": rsa_pem("another")})

    with caplog.at_level(logging.DEBUG), pytest.raises(ReauthorizationRequired) as refused:
        get_access_token(integration)

    assert "invalid_grant" in refused.value.message
    assert auth_server.issued == []
    integration.refresh_from_db()
    assert integration.needs_reauthorization is True
    assert integration.status == Integration.Status.ERROR
    assert "invalid_grant" in integration.last_error
    assert (integration.token_refresh_attempts, integration.token_refresh_failures) == (1, 1)
    # no retry storm: the next caller is told at once, nothing is sent
    with pytest.raises(ReauthorizationRequired):
        get_access_token(integration)
    assert len(auth_server.token_requests) == 1
    assertion = auth_server.token_requests[0]["assertion"]
    for text in (integration.last_error, caplog.text):
        assert assertion not in text
        assert not any(line in text for line in pem_lines(rsa_pem("another")))


def test_a_subject_the_server_does_not_know_is_terminal(auth_server, organization):
    auth_server.register("acme-hiring", public_pem(rsa_pem()))
    integration = custom_jwt(organization, auth_server, config={"subject": "stranger@acme.example"})
    with pytest.raises(ReauthorizationRequired):
        get_access_token(integration)
    assert auth_server.issued == []


def test_a_scope_the_server_refuses_backs_off_without_reauthorization(auth_server, organization):
    auth_server.register("acme-hiring", public_pem(rsa_pem()))
    integration = custom_jwt(organization, auth_server, config={"scopes": ["payroll"]})
    with pytest.raises(Exception, match="invalid_scope"):
        get_access_token(integration)
    integration.refresh_from_db()
    assert integration.needs_reauthorization is False
    assert integration.refresh_retry_at is not None and integration.refresh_failure_count == 1


def test_a_minted_token_is_reused_until_close_to_expiry_then_minted_again(auth_server, organization):
    auth_server.register("acme-hiring", public_pem(rsa_pem()))
    integration = custom_jwt(organization, auth_server)
    first = get_access_token(integration)
    assert get_access_token(Integration.objects.get(pk=integration.pk)) == first
    assert len(auth_server.token_requests) == 1

    # within the refresh margin (5 min) of its expiry: minted again, on the same locked path
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=timezone.now() + timedelta(minutes=4))
    second = get_access_token(Integration.objects.get(pk=integration.pk))

    assert second != first
    assert second == auth_server.issued[1].access_token
    assert len(auth_server.token_requests) == 2
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == second
    assert integration.token_refresh_attempts == 2


def test_changing_the_subject_drops_the_token_minted_for_the_old_one(auth_server, organization):
    auth_server.users.add("hiring-manager@acme.example")
    auth_server.register("acme-hiring", public_pem(rsa_pem()))
    integration = custom_jwt(organization, auth_server)
    get_access_token(integration)
    config = {**integration.config, "subject": "hiring-manager@acme.example"}
    integration = integration_update(integration=integration, config=config)
    assert "access_token" not in integration.credentials
    get_access_token(integration)
    assert [issued.subject for issued in auth_server.issued] == [SUBJECT, "hiring-manager@acme.example"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_of_an_expiring_jwt_integration_mint_exactly_once(auth_server, organization):
    """Two threads need a token at once: one assertion is sent, both get its token.

    The second thread waits on the row lock (PostgreSQL select_for_update; SQLite's
    IMMEDIATE transactions) while the first mints, then re-reads the row and finds the token.
    """
    auth_server.register("acme-hiring", public_pem(rsa_pem()))
    integration = custom_jwt(organization, auth_server)
    get_access_token(integration)
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=timezone.now() + timedelta(seconds=30))
    auth_server.delay = 0.5  # hold the lock long enough for the other thread to queue behind it
    results = tokens_at_once(integration.pk)
    assert len(auth_server.token_requests) == 2  # the first mint, and exactly one more
    assert results == [auth_server.issued[1].access_token] * 2
    integration.refresh_from_db()
    assert integration.token_refresh_attempts == 2


def test_an_http_token_url_is_refused_without_allow_private_urls(settings, organization):
    settings.ALLOW_PRIVATE_URLS = False
    from integrations.validation import IntegrationInvalid

    with pytest.raises(IntegrationInvalid) as invalid:
        integration_create_custom(organization, "http://auth.example.com/token")
    assert "token_url" in invalid.value.errors["config"]


def test_a_row_saved_around_the_rules_is_refused_before_anything_is_sent(settings, organization):
    settings.ALLOW_PRIVATE_URLS = False
    integration = Integration.objects.create(
        organization=organization,
        name="legacy",
        provider="custom",
        auth_type="jwt",
        status=Integration.Status.ACTIVE,
        config={"token_url": "http://auth.example.com/token", "issuer": "acme"},
    )
    integration.credentials = {"private_key": rsa_pem()}
    integration.save()
    with responses.RequestsMock(), pytest.raises(GrantConfigInvalid, match="https"):
        get_access_token(integration)


def integration_create_custom(organization, token_url):
    from integrations.services import integration_create

    return integration_create(
        organization=organization,
        name="c",
        provider="custom",
        auth_type="jwt",
        config={"token_url": token_url, "issuer": "acme"},
        credentials={"private_key": rsa_pem()},
    )


@responses.activate
def test_hs256_with_a_client_secret(organization):
    secret = "s3cr3t-" + "x" * 40
    integration = integration_create_custom(organization, "https://auth.example.com/token")
    integration = integration_update(
        integration=integration,
        config={**integration.config, "algorithm": "HS256", "extra_claims": {"tenant": "acme", "roles": ["ats"]}},
        credentials={"client_secret": secret},
    )
    responses.post("https://auth.example.com/token", body=token_answer(), headers=JSON)
    assert get_access_token(integration) == "minted-access"
    assertion = form(responses.calls[0].request)["assertion"]
    claims = jwt.decode(assertion, secret, algorithms=["HS256"], audience="https://auth.example.com/token")
    assert (claims["iss"], claims["sub"], claims["tenant"], claims["roles"]) == ("acme", "acme", "acme", ["ats"])


# --- DocuSign ----------------------------------------------------------------------------


def test_docusign_assertion_has_docusign_claims(organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, body=token_answer(), headers=JSON)
        assert get_access_token(integration) == "minted-access"
        sent = form(mock.calls[0].request)
    assert sent["grant_type"] == GRANT_TYPE
    assert "scope" not in sent  # DocuSign reads it from the assertion
    assert jwt.get_unverified_header(sent["assertion"])["alg"] == "RS256"
    claims = jwt.decode(sent["assertion"], public_pem(rsa_pem()), algorithms=["RS256"], audience=DOCUSIGN_DEMO)
    assert claims["iss"] == INTEGRATION_KEY
    assert claims["sub"] == DOCUSIGN_USER
    assert claims["aud"] == DOCUSIGN_DEMO
    assert claims["scope"] == "signature impersonation"
    assert claims["exp"] - claims["iat"] <= 3600  # DocuSign's maximum


def test_docusign_production_domain_and_configured_scopes(organization):
    integration = docusign_jwt(
        organization,
        config={"account_domain": "account.docusign.com", "scopes": ["signature", "impersonation", "cors"]},
    )
    with responses.RequestsMock() as mock:
        mock.post("https://account.docusign.com/oauth/token", body=token_answer(), headers=JSON)
        get_access_token(integration)
        claims = jwt.decode(form(mock.calls[0].request)["assertion"], options={"verify_signature": False})
    assert (claims["aud"], claims["scope"]) == ("account.docusign.com", "signature impersonation cors")


def test_docusign_consent_url(organization, settings):
    settings.PUBLIC_BASE_URL = "https://hire.acme.example"
    integration = docusign_jwt(organization)
    assert consent_url(integration) == (
        f"https://{DOCUSIGN_DEMO}/oauth/auth?response_type=code&scope=signature%20impersonation"
        f"&client_id={INTEGRATION_KEY}"
        "&redirect_uri=https%3A%2F%2Fhire.acme.example%2Fapi%2Fintegrations%2Foauth%2Fcallback%2F"
    )
    with_redirect = docusign_jwt(organization, name="2", config={"redirect_uri": "https://hire.acme.example/consented"})
    assert consent_url(with_redirect).endswith("redirect_uri=https%3A%2F%2Fhire.acme.example%2Fconsented")


def test_docusign_consent_required_is_terminal_then_minting_after_consent_recovers(api_client, organization):
    """The procedure of docs/PROVIDERS.md: DocuSign answers consent_required; the admin opens
    the consent URL, grants it, then mints a token (POST .../oauth/refresh/)."""
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, status=HTTPStatus.BAD_REQUEST, json={"error": "consent_required"})
        with pytest.raises(ReauthorizationRequired) as refused:
            get_access_token(integration)
    assert "consent_required" in refused.value.message
    integration.refresh_from_db()
    assert integration.needs_reauthorization is True
    assert integration.status == Integration.Status.ERROR
    assert "consent URL" in integration.last_error
    body = api_client.get(f"/api/integrations/{integration.pk}/").json()
    assert body["consent_url"] == consent_url(integration) != ""
    assert body["needs_reauthorization"] is True

    with responses.RequestsMock() as mock:  # consent granted at DocuSign meanwhile
        mock.post(DOCUSIGN_TOKEN_URL, body=token_answer("after-consent"), headers=JSON)
        response = api_client.post(f"/api/integrations/{integration.pk}/oauth/refresh/")
    assert response.status_code == HTTPStatus.OK, response.json()
    assert response.json()["needs_reauthorization"] is False
    assert response.json()["status"] == "active"
    assert response.json()["last_error"] == ""
    assert get_access_token(Integration.objects.get(pk=integration.pk)) == "after-consent"


def test_docusign_5xx_backs_off_and_is_not_terminal(organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, status=HTTPStatus.SERVICE_UNAVAILABLE, body="<html>down</html>")
        with pytest.raises(UpstreamError, match="HTTP 503"):
            get_access_token(integration)
    integration.refresh_from_db()
    assert integration.needs_reauthorization is False
    assert integration.refresh_failure_count == 1
    assert integration.refresh_retry_at > timezone.now()
    with responses.RequestsMock(), pytest.raises(UpstreamError, match="backing off"):
        get_access_token(integration)  # no request while backing off


def test_docusign_invalid_grant_is_terminal(organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(
            DOCUSIGN_TOKEN_URL,
            status=HTTPStatus.BAD_REQUEST,
            json={"error": "invalid_grant", "error_description": "user_not_found"},
        )
        with pytest.raises(ReauthorizationRequired, match="user_not_found"):
            get_access_token(integration)


def test_docusign_account_domain_off_docusign_hosts_is_refused(api_client):
    response = api_client.post(
        "/api/integrations/",
        {
            "name": "DocuSign JWT",
            "provider": "docusign",
            "auth_type": "jwt",
            "config": {"account_domain": "account.docusign.com.evil.example", "client_id": "k", "user_id": "u"},
            "credentials": {"private_key": rsa_pem()},
        },
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "own hosts" in field_errors(response)["config.account_domain"][0]


# --- Google service accounts (domain-wide delegation) ------------------------------------


@pytest.mark.parametrize(
    ("provider", "scopes"),
    [
        (
            "google_calendar",
            "https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar.events",
        ),
        ("gmail", "https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.send"),
    ],
)
def test_google_service_account_assertion(organization, provider, scopes):
    integration = google_jwt(organization, provider)
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_answer("ya29.minted", 3599), headers=JSON)
        assert get_access_token(integration) == "ya29.minted"
        sent = form(mock.calls[0].request)
    assert sent["grant_type"] == GRANT_TYPE
    header = jwt.get_unverified_header(sent["assertion"])
    assert (header["alg"], header["kid"]) == ("RS256", SA_KEY_ID)
    claims = jwt.decode(
        sent["assertion"], public_pem(rsa_pem("google")), algorithms=["RS256"], audience=GOOGLE_TOKEN_URL
    )
    assert (claims["iss"], claims["sub"], claims["aud"]) == (SA_EMAIL, SUBJECT, GOOGLE_TOKEN_URL)
    assert claims["scope"] == scopes
    assert claims["exp"] - claims["iat"] <= 3600  # Google's maximum


def test_google_configured_scopes(organization):
    integration = google_jwt(organization, config={"scopes": ["https://www.googleapis.com/auth/calendar"]})
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, body=token_answer(), headers=JSON)
        get_access_token(integration)
        claims = jwt.decode(form(mock.calls[0].request)["assertion"], options={"verify_signature": False})
    assert claims["scope"] == "https://www.googleapis.com/auth/calendar"


def test_google_delegation_not_granted_is_terminal_and_says_what_to_do(organization):
    integration = google_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(
            GOOGLE_TOKEN_URL,
            status=HTTPStatus.UNAUTHORIZED,
            json={
                "error": "unauthorized_client",
                "error_description": "Client is unauthorized to retrieve access tokens using this method, "
                "or client not authorized for any of the scopes requested.",
            },
        )
        with pytest.raises(ReauthorizationRequired):
            get_access_token(integration)
    integration.refresh_from_db()
    assert integration.needs_reauthorization is True
    assert "unauthorized_client" in integration.last_error
    assert "domain-wide delegation" in integration.last_error
    assert "admin.google.com" in integration.last_error
    assert SA_CLIENT_ID in integration.last_error
    assert "https://www.googleapis.com/auth/calendar.readonly,https://www.googleapis.com/auth/calendar.events" in (
        integration.last_error
    )
    assert consent_url(integration) == ""  # Google needs no consent URL, an admin grants delegation


def test_google_invalid_grant_is_terminal(organization):
    integration = google_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(
            GOOGLE_TOKEN_URL,
            status=HTTPStatus.BAD_REQUEST,
            json={"error": "invalid_grant", "error_description": "Invalid email or User ID"},
        )
        with pytest.raises(ReauthorizationRequired, match="Invalid email or User ID"):
            get_access_token(integration)


def test_google_5xx_is_transient(organization):
    integration = google_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(GOOGLE_TOKEN_URL, status=HTTPStatus.INTERNAL_SERVER_ERROR, json={"error": "internal_failure"})
        with pytest.raises(UpstreamError):
            get_access_token(integration)
    integration.refresh_from_db()
    assert (integration.needs_reauthorization, integration.refresh_failure_count) == (False, 1)


def test_an_echoed_assertion_and_key_never_reach_errors_or_logs(organization, caplog):
    integration = google_jwt(organization)
    key_line = pem_lines(rsa_pem("google"))[3]

    def echo(request):
        assertion = form(request)["assertion"]
        return (400, JSON, json.dumps({"error": "invalid_request", "error_description": f"{assertion} {key_line}"}))

    with caplog.at_level(logging.DEBUG), responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, GOOGLE_TOKEN_URL, callback=echo)
        with pytest.raises(Exception) as failure:
            get_access_token(integration)
        assertion = form(mock.calls[0].request)["assertion"]
    integration.refresh_from_db()
    for text in (str(failure.value), integration.last_error, caplog.text):
        assert assertion not in text
        assert key_line not in text
    assert "[redacted]" in integration.last_error


def test_the_request_object_does_not_show_the_assertion(organization):
    request = jwt_request(google_jwt(organization))
    assert request.assertion not in repr(request)
    assert rsa_pem("google") not in repr(request)


def test_forced_mint_is_not_repeated_when_another_worker_minted_meanwhile(organization):
    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, body=token_answer("first"), headers=JSON)
        get_access_token(integration)
    stale = Integration.objects.get(pk=integration.pk)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, body=token_answer("second"), headers=JSON)
        oauth_refresh_token(integration=integration, force=True)
        assert len(mock.calls) == 1
    with responses.RequestsMock():  # `stale` saw "first": the newer token is kept, nothing sent
        assert oauth_refresh_token(integration=stale, force=True).credentials["access_token"] == "second"


def test_the_proactive_refresh_mints_jwt_tokens_about_to_expire(organization):
    from integrations.oauth.tokens import oauth_refresh_expiring_tokens

    integration = docusign_jwt(organization)
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, body=token_answer("first"), headers=JSON)
        get_access_token(integration)
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=timezone.now() + timedelta(minutes=7))
    with responses.RequestsMock() as mock:
        mock.post(DOCUSIGN_TOKEN_URL, body=token_answer("ahead"), headers=JSON)
        summary = oauth_refresh_expiring_tokens(within=timedelta(minutes=5))
    assert (summary.refreshed, summary.failed) == (1, 0)
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "ahead"
