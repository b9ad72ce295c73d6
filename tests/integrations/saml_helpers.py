"""SAML test material: key pairs and certificates, IdP metadata, a real RFC 7522 token server."""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from signxml import SignatureConfiguration, SignatureMethod, XMLVerifier

IDP_ENTITY_ID = "https://idp.example.test/metadata"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"


@functools.cache
def rsa_key(label: str = "default") -> rsa.RSAPrivateKey:
    """One 2048-bit key per label for the whole run (generating one takes a while)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class KeyPair:
    key_pem: str
    cert_pem: str
    #: the certificate as metadata carries it: base64 DER
    cert_b64: str
    not_after: datetime


def key_pair(
    *,
    valid_for: timedelta = timedelta(days=365),
    valid_since: timedelta = timedelta(days=1),
    label: str = "default",
    common_name: str = "idp.example.test",
) -> KeyPair:
    """A self-signed certificate valid from now - `valid_since` to now + `valid_for`."""
    key = rsa_key(label)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - valid_since)
        .not_valid_after(now + valid_for)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    der = cert.public_bytes(serialization.Encoding.DER)
    return KeyPair(
        key_pem=key_pem,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        cert_b64=base64.encodebytes(der).decode(),  # wrapped at 76 columns, as IdPs publish it
        not_after=cert.not_valid_after_utc,
    )


def key_descriptor(cert_b64: str, use: str | None = "signing") -> str:
    use_attribute = f' use="{use}"' if use else ""
    return (
        f"<md:KeyDescriptor{use_attribute}><ds:KeyInfo><ds:X509Data>"
        f"<ds:X509Certificate>{cert_b64}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )


def entity(entity_id: str = IDP_ENTITY_ID, *, certs: list[str] | None = None, use: str | None = "signing") -> str:
    descriptors = "".join(key_descriptor(cert, use) for cert in (certs if certs is not None else [key_pair().cert_b64]))
    return (
        f'<md:EntityDescriptor entityID="{entity_id}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{descriptors}"
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://idp.example.test/sso"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


NAMESPACES = 'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"'


def metadata_xml(entity_id: str = IDP_ENTITY_ID, *, certs: list[str] | None = None, use: str | None = "signing") -> str:
    """An IdP's metadata document (one md:EntityDescriptor) with these signing certificates."""
    body = entity(entity_id, certs=certs, use=use)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body.replace(
        "<md:EntityDescriptor ", f"<md:EntityDescriptor {NAMESPACES} ", 1
    )


# --- a real authorization server for the SAML 2.0 bearer grant (RFC 7522) -----------------


@dataclass
class TokenServer:
    """Verifies each assertion's XML signature against `trusted_cert_pem` (signxml's
    XMLVerifier), then what RFC 7522 §3 requires of it, and answers a token or `invalid_grant`."""

    trusted_cert_pem: str
    issuer: str = "https://ats.example.test"
    subject: str = "integration-user@acme.test"
    #: the Audience it expects; None: its own token URL
    audience: str | None = None
    #: an answer instead of verifying: (status, JSON body), or a function of the form giving one
    reply: tuple[int, dict] | Callable[[dict], tuple[int, dict]] | None = None
    #: seconds to wait before answering (holding the integration's row lock meanwhile)
    delay: float = 0.0
    requests: list[dict] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    minted: int = 0

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {key: values[0] for key, values in parse_qs(body).items()}
                status, answer = server.answer(form, dict(self.headers))
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/oauth/token"

    def start(self) -> TokenServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, form: dict, headers: dict) -> tuple[int, dict]:
        time.sleep(self.delay)
        with self.lock:
            self.requests.append({"form": form, "headers": headers})
            if callable(self.reply):
                return self.reply(form)
            if self.reply is not None:
                return self.reply
            try:
                self.verify(form)
            except Exception as error:  # every refusal is an RFC 6749 invalid_grant
                self.refusals.append(str(error))
                return 400, {"error": "invalid_grant", "error_description": str(error)[:200]}
            self.minted += 1
            token = {"access_token": f"minted-{self.minted}", "token_type": "Bearer", "expires_in": 3600}
            if form.get("scope"):
                token["scope"] = form["scope"]
            return 200, token

    def verify(self, form: dict) -> None:
        assert form.get("grant_type") == GRANT_TYPE, f"grant_type {form.get('grant_type')!r}"
        encoded = form["assertion"]
        assert "=" not in encoded and "\n" not in encoded, "not unpadded base64url"
        xml = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        config = SignatureConfiguration(signature_methods=frozenset({SignatureMethod.RSA_SHA256}))
        # See what is signed: everything below is read from the verified element only.
        signed = XMLVerifier().verify(xml, x509_cert=self.trusted_cert_pem, expect_config=config).signed_xml
        assert signed.tag == f"{{{SAML}}}Assertion", f"signed {signed.tag}"
        now = datetime.now(UTC)

        def one(path: str):
            found = signed.findall(path, {"saml": SAML})
            assert len(found) == 1, f"{path}: {len(found)}"
            return found[0]

        def instant(value: str) -> datetime:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))

        assert one("saml:Issuer").text == self.issuer, "issuer"
        assert one("saml:Subject/saml:NameID").text == self.subject, "subject"
        confirmation = one("saml:Subject/saml:SubjectConfirmation")
        assert confirmation.get("Method") == "urn:oasis:names:tc:SAML:2.0:cm:bearer", "method"
        data = one("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData")
        assert data.get("Recipient") == self.url, f"recipient {data.get('Recipient')!r}"
        assert instant(data.get("NotOnOrAfter")) > now, "expired (SubjectConfirmationData)"
        conditions = one("saml:Conditions")
        assert instant(conditions.get("NotBefore")) <= now + timedelta(seconds=5), "not yet valid"
        not_on_or_after = instant(conditions.get("NotOnOrAfter"))
        assert now < not_on_or_after <= now + timedelta(hours=1), "expired or too long"
        audience = one("saml:Conditions/saml:AudienceRestriction/saml:Audience").text
        assert audience == (self.audience or self.url), f"audience {audience!r}"
        one("saml:AuthnStatement")
