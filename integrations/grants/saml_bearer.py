"""The SAML 2.0 bearer assertion grant (RFC 7522): an access token for a signed assertion.

A `saml` integration of a provider whose config has `token_url` (today `custom`; Workday's
SAML is its SSO, see docs/PROVIDERS.md) mints its tokens this way. Each mint builds a fresh
`saml:Assertion` (RFC 7522 §3):

- `Issuer` = `config.issuer` (who we are to the authorization server);
- `Subject/NameID` = `config.subject` (the user the token acts for), confirmed by the
  `bearer` method with `Recipient` = the token URL and `NotOnOrAfter`;
- `Conditions` (`NotBefore`, `NotOnOrAfter`) with an `AudienceRestriction` to
  `config.audience` (default: the token URL);
- an `AuthnStatement`;

valid for `config.assertion_lifetime_seconds` (default 300), signed with signxml (enveloped,
RSA-SHA256, exclusive c14n, the signature after the `Issuer` as the SAML schema wants, the
certificate in `KeyInfo`) with the `private_key` and `certificate` credentials (PEM). It is
sent base64url-encoded without padding: `grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer`
and `assertion`, plus `scope` (`config.scopes`) and client authentication when `client_id`
is configured (`client_secret` from the credentials, posted or as Basic per
`token_auth_method`).

The request goes through the hardened session (timeout, address pinning, no redirects,
capped read). The answer is read by the OAuth client's rules (`integrations/oauth/client.py`):
`OAuthError` with the provider's `error` (`invalid_grant` is terminal: the integration
needs re-authorization) or `OAuthUpstreamError`; the assertion (base64url, its XML text
and the XML's `SignatureValue` and `DigestValue`) and secrets are redacted from every
message. Tokens are then stored and renewed by `integrations/oauth/tokens.py`.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree  # type: ignore[import-untyped]  # no stubs; signxml hands us lxml trees
from signxml import XMLSigner, methods

from common.exceptions import ApplicationError
from integrations import app_settings, providers
from integrations.http import InvalidIPAddress, ResponseTooLarge, get_session
from integrations.models import UNREADABLE_CREDENTIALS, Integration
from integrations.oauth.client import (
    OAuthUpstreamError,
    TokenEndpointNotPublic,
    TokenSet,
    _checked,
    _token_set,
)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
AUTHN_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
DEFAULT_LIFETIME = 300
MIN_RSA_BITS = 2048
USER_AGENT = "integrations-saml-bearer/1.0"


@dataclass(frozen=True)
class BearerGrant:
    """What one mint needs, read from an integration."""

    token_url: str
    issuer: str
    subject: str
    audience: str
    lifetime: int
    scopes: tuple[str, ...]
    client_id: str
    token_auth_method: str
    private_key: str = field(repr=False)
    certificate: str = field(repr=False)
    client_secret: str = field(default="", repr=False)

    @classmethod
    def of(cls, integration: Integration) -> BearerGrant:
        if integration.auth_type != providers.SAML:
            raise ApplicationError("This integration does not use SAML.")
        if not integration.credentials_readable:
            raise ApplicationError(UNREADABLE_CREDENTIALS)
        config: dict[str, Any] = integration.config if isinstance(integration.config, dict) else {}
        credentials: dict[str, Any] = integration.credentials if isinstance(integration.credentials, dict) else {}
        token_url = config.get("token_url") or ""
        if not token_url:
            raise ApplicationError("This SAML integration has no SAML bearer grant: set config.token_url.")
        missing = [f"config.{key}" for key in ("issuer", "subject") if not config.get(key)]
        missing += [f"credentials.{key}" for key in ("private_key", "certificate") if not credentials.get(key)]
        if missing:
            raise ApplicationError(f"The SAML bearer grant needs {', '.join(missing)}.")
        provider = integration.provider_info
        return cls(
            token_url=token_url,
            issuer=config["issuer"],
            subject=config["subject"],
            audience=config.get("audience") or token_url,
            lifetime=int(config.get("assertion_lifetime_seconds") or DEFAULT_LIFETIME),
            scopes=tuple(config.get("scopes") or ()),
            client_id=config.get("client_id") or "",
            token_auth_method=config.get("token_auth_method")
            or (provider.token_auth_method if provider else providers.CLIENT_SECRET_POST),
            private_key=credentials["private_key"],
            certificate=credentials["certificate"],
            client_secret=credentials.get("client_secret") or "",
        )


# --- the assertion ------------------------------------------------------------------------


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _element(parent: etree._Element, name: str, text: str | None = None, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{SAML}}}{name}", attributes)
    if text is not None:
        element.text = text
    return element


def build_assertion(grant: BearerGrant, *, now: datetime | None = None) -> etree._Element:
    """The unsigned assertion, with a `ds:Signature` placeholder after its `Issuer`."""
    now = now or datetime.now(UTC)
    expires = _instant(now + timedelta(seconds=grant.lifetime))
    issued = _instant(now)
    assertion = etree.Element(
        f"{{{SAML}}}Assertion",
        {"ID": "_" + uuid.uuid4().hex, "Version": "2.0", "IssueInstant": issued},
        nsmap={"saml": SAML},
    )
    _element(assertion, "Issuer", grant.issuer)
    # signxml replaces this element by the signature: the schema wants it right after Issuer
    etree.SubElement(assertion, f"{{{DS}}}Signature", {"Id": "placeholder"}, nsmap={"ds": DS})
    subject = _element(assertion, "Subject")
    _element(subject, "NameID", grant.subject, Format=NAMEID_UNSPECIFIED)
    confirmation = _element(subject, "SubjectConfirmation", Method=BEARER)
    _element(confirmation, "SubjectConfirmationData", NotOnOrAfter=expires, Recipient=grant.token_url)
    conditions = _element(assertion, "Conditions", NotBefore=issued, NotOnOrAfter=expires)
    _element(_element(conditions, "AudienceRestriction"), "Audience", grant.audience)
    statement = _element(assertion, "AuthnStatement", AuthnInstant=issued)
    _element(_element(statement, "AuthnContext"), "AuthnContextClassRef", AUTHN_UNSPECIFIED)
    return assertion


def signed_assertion(grant: BearerGrant, *, now: datetime | None = None) -> bytes:
    """The assertion, signed (enveloped, RSA-SHA256), as XML bytes."""
    assertion = build_assertion(grant, now=now)
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=EXCLUSIVE_C14N,
    )
    try:
        signed = signer.sign(
            assertion,
            key=grant.private_key,
            cert=grant.certificate,
            reference_uri=assertion.get("ID"),
            id_attribute="ID",
        )
    except Exception:  # a key or certificate stored around validation: say which, never what
        raise ApplicationError(
            "The SAML assertion could not be signed: check credentials.private_key and credentials.certificate."
        ) from None
    return etree.tostring(signed)


def assertion_secrets(xml: bytes) -> list[str]:
    """What an echoing token endpoint could show of a signed assertion, to redact: its XML
    text (whose base64 forms `common.redaction` adds) and its SignatureValue and DigestValue,
    as written (line breaks and all) and on one line."""
    text = xml.decode()
    values = [text]
    for element in etree.fromstring(xml).iter(f"{{{DS}}}SignatureValue", f"{{{DS}}}DigestValue"):
        value = element.text or ""
        values += [value, value.strip(), "".join(value.split())]
    return values


def encode_assertion(xml: bytes) -> str:
    """base64url without padding and without line breaks (RFC 7522 §2.1)."""
    return base64.urlsafe_b64encode(xml).rstrip(b"=").decode()


# --- the token request --------------------------------------------------------------------


def mint(integration: Integration) -> TokenSet:
    grant = BearerGrant.of(integration)
    xml = signed_assertion(grant)
    assertion = encode_assertion(xml)
    data = {"grant_type": GRANT_TYPE, "assertion": assertion}
    if grant.scopes:
        data["scope"] = " ".join(grant.scopes)
    auth = None
    pairs: list[tuple[str, str]] = []
    if grant.client_id:
        if grant.token_auth_method == providers.CLIENT_SECRET_BASIC and grant.client_secret:
            auth = (grant.client_id, grant.client_secret)
            pairs.append(auth)
        else:
            data["client_id"] = grant.client_id
            if grant.client_secret:
                data["client_secret"] = grant.client_secret
    hidden = [assertion, *assertion_secrets(xml), grant.client_secret, grant.private_key]
    url = grant.token_url
    try:
        response = get_session(USER_AGENT).post(
            url,
            data=data,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=(app_settings.http_timeout(), app_settings.http_timeout()),
            allow_redirects=False,
        )
    except InvalidIPAddress:
        raise TokenEndpointNotPublic(url) from None
    except requests.Timeout:
        raise OAuthUpstreamError(f"The token endpoint timed out ({url}).") from None
    except ResponseTooLarge as error:
        raise OAuthUpstreamError(
            f"The token endpoint answered too large: more than {error.limit} bytes once decoded ({url})."
        ) from None
    except requests.RequestException as error:
        raise OAuthUpstreamError(f"Could not reach the token endpoint ({type(error).__name__}, {url}).") from None
    _checked(response, hidden, pairs)  # an OAuth error body, a 5xx, no access_token: raises
    token = dict(response.json())
    expires_in = token.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():  # some servers send it as a string
        token["expires_in"] = int(expires_in)
    return _token_set(token)


# --- validation at save time (integrations/validation.py) ---------------------------------


def key_pair_errors(credentials: dict[str, Any]) -> dict[str, list[str]]:
    """Errors of the `private_key` and `certificate` credentials (never their values)."""
    errors: dict[str, list[str]] = {}
    key_pem, cert_pem = credentials.get("private_key"), credentials.get("certificate")
    key = cert = None
    if not isinstance(key_pem, str) or not key_pem.strip():
        errors["private_key"] = ["Required for the SAML bearer grant (token_url is set)."]
    else:
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        except TypeError:
            errors["private_key"] = ["Must be an unencrypted PEM private key (this one needs a password)."]
        except ValueError:
            errors["private_key"] = ["Must be a PEM-encoded private key."]
        else:
            if not isinstance(key, rsa.RSAPrivateKey):
                errors["private_key"] = ["Must be an RSA key: assertions are signed with RSA-SHA256."]
                key = None
            elif key.key_size < MIN_RSA_BITS:
                errors["private_key"] = [f"The RSA key must have at least {MIN_RSA_BITS} bits."]
                key = None
    if not isinstance(cert_pem, str) or not cert_pem.strip():
        errors["certificate"] = ["Required for the SAML bearer grant: the PEM certificate of private_key."]
    else:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode())
        except ValueError:
            errors["certificate"] = ["Must be a PEM-encoded X.509 certificate."]
    if key is not None and cert is not None and cert.public_key() != key.public_key():
        errors["certificate"] = ["This certificate is not the one of private_key."]
    return errors


def certificate_not_after(integration: Integration) -> tuple[str, datetime] | None:
    """(subject, expiry) of the bearer grant's certificate, None when it has none readable."""
    credentials = integration.credentials if isinstance(integration.credentials, dict) else {}
    pem = credentials.get("certificate")
    if not isinstance(pem, str) or not pem:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    return cert.subject.rfc4514_string()[:200], cert.not_valid_after_utc
