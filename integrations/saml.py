"""SAML 2.0 identity-provider metadata: where an integration's comes from and what it says.

A `saml` integration names its identity provider (IdP) by its metadata: `config.idp_metadata`
(the XML itself) or `config.idp_metadata_url` (fetched at each check). Integrations saved
before these config keys existed carry the same keys in their credentials; they are still
read from there.

`parse_metadata` reads an `md:EntityDescriptor` (or the IdP's entry of an
`md:EntitiesDescriptor`): its `entityID`, which must equal `config.idp_entity_id` when that is
set, an `md:IDPSSODescriptor`, and its signing certificates (`md:KeyDescriptor` with
`use="signing"` or without `use`; `ds:X509Certificate`, base64 DER) with their validity.
The health check (`health/saml.py`) turns that into a status; a metadata document whose
`validUntil` has passed is refused.

The XML is parsed with defusedxml: a DTD, entity declarations (billion laughs) or external
references are refused before anything is expanded, and no more than `MAX_METADATA_BYTES`
is read or parsed. A metadata URL is fetched through the hardened session (timeout and
deadline, the address checked and pinned, no redirects, a capped read), and must be https
unless `ALLOW_PRIVATE_URLS`: the certificates it delivers decide whom the IdP's signatures
are trusted from.

Errors are one-line messages: `MetadataInvalid` (the metadata is wrong: 400 naming the
config key at save time, `config_invalid` in health) and `MetadataUnavailable` (it could not
be fetched: `provider_unavailable`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

import requests
from cryptography import x509
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from django.core.exceptions import ValidationError

from common.exceptions import ApplicationError, UpstreamError
from common.http import InvalidIPAddress, ResponseTooLarge, describe_size, read_capped, request_deadline
from common.ssrf import validate_public_url

from . import app_settings
from .http import get_session

if TYPE_CHECKING:
    from .models import Integration

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
#: metadata of one IdP is a few KiB; federation aggregates are not what an integration names
MAX_METADATA_BYTES = 1024 * 1024
USER_AGENT = "integrations-saml/1.0"
METADATA_KEYS = ("idp_metadata", "idp_metadata_url")
DEFAULT_ASSERTION_LIFETIME = 300
MAX_ASSERTION_LIFETIME = 3600


class MetadataInvalid(ApplicationError):
    """The metadata cannot be used (unparsable, not an IdP, wrong entity, no certificate)."""

    def __init__(self, message: str, *, field: str = "idp_metadata"):
        super().__init__(message)
        #: the config key to name in a 400
        self.field = field


class MetadataUnavailable(UpstreamError):
    """The metadata URL did not deliver (timeout, connection failure, non-2xx answer)."""

    def __init__(self, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class SigningCertificate:
    subject: str
    not_before: datetime
    not_after: datetime
    sha256_fingerprint: str

    def is_valid_at(self, when: datetime) -> bool:
        return self.not_before <= when < self.not_after


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    certificates: tuple[SigningCertificate, ...]
    valid_until: datetime | None = None

    def current_certificate(self, when: datetime) -> SigningCertificate | None:
        """The valid certificate that lasts longest (an IdP rolling its key publishes two)."""
        valid = [cert for cert in self.certificates if cert.is_valid_at(when)]
        return max(valid, key=lambda cert: cert.not_after) if valid else None


# --- parsing ------------------------------------------------------------------------------


def _tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_datetime(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MetadataInvalid(f"The IdP metadata's {what} is not an xs:dateTime ({value[:40]!r}).") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_metadata(data: str | bytes, *, expected_entity_id: str = "", now: datetime | None = None) -> IdpMetadata:
    """The IdP's entity id and signing certificates; raises `MetadataInvalid`."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_METADATA_BYTES:
        raise MetadataInvalid(f"The IdP metadata is larger than {describe_size(MAX_METADATA_BYTES)}.")
    if not data.strip():
        raise MetadataInvalid("The IdP metadata is empty.")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise MetadataInvalid(
            "The IdP metadata contains a DTD, an entity declaration or an external reference, which is refused."
        ) from None
    except ParseError as error:
        line, column = error.position
        raise MetadataInvalid(f"The IdP metadata is not well-formed XML (line {line}, column {column}).") from None
    entity = _idp_entity(root, expected_entity_id)
    entity_id = (entity.get("entityID") or "").strip()
    if not entity_id:
        raise MetadataInvalid("The IdP metadata's EntityDescriptor has no entityID.")
    if expected_entity_id and entity_id != expected_entity_id:
        raise MetadataInvalid(
            f"The IdP metadata's entityID is {entity_id[:200]!r}, not {expected_entity_id[:200]!r} (idp_entity_id).",
            field="idp_entity_id",
        )
    now = now or datetime.now(UTC)
    valid_until = None
    for node in (root, entity):  # an aggregate's validUntil bounds its entities too
        if node.get("validUntil"):
            until = _xml_datetime(node.get("validUntil", ""), "validUntil")
            valid_until = until if valid_until is None else min(valid_until, until)
    if valid_until is not None and valid_until <= now:
        raise MetadataInvalid(
            f"The IdP metadata expired at {valid_until.isoformat(timespec='seconds')} (validUntil): "
            "get a current copy from the IdP."
        )
    idp = entity.find(_tag(MD, "IDPSSODescriptor"))
    if idp is None:
        raise MetadataInvalid("The IdP metadata has no IDPSSODescriptor: it does not describe an identity provider.")
    certificates = tuple(_signing_certificates(idp))
    if not certificates:
        raise MetadataInvalid(
            'The IdP metadata has no signing certificate (a KeyDescriptor with use="signing" or no use, '
            "holding an X509Certificate)."
        )
    return IdpMetadata(entity_id=entity_id, certificates=certificates, valid_until=valid_until)


def _idp_entity(root: Element, expected_entity_id: str) -> Element:
    if root.tag == _tag(MD, "EntityDescriptor"):
        return root
    if root.tag != _tag(MD, "EntitiesDescriptor"):
        raise MetadataInvalid(
            f"The IdP metadata is not SAML 2.0 metadata: its root element is {_local(root.tag)[:100]!r}, "
            "expected md:EntityDescriptor."
        )
    idps = [
        entity
        for entity in root.iter(_tag(MD, "EntityDescriptor"))
        if entity.find(_tag(MD, "IDPSSODescriptor")) is not None
    ]
    if expected_entity_id:
        named = [entity for entity in idps if entity.get("entityID") == expected_entity_id]
        if named:
            return named[0]
        raise MetadataInvalid(
            f"The IdP metadata has no identity provider with entityID {expected_entity_id[:200]!r} (idp_entity_id).",
            field="idp_entity_id",
        )
    if len(idps) != 1:
        raise MetadataInvalid(
            f"The IdP metadata describes {len(idps)} identity providers: set idp_entity_id to choose one.",
            field="idp_entity_id",
        )
    return idps[0]


def _signing_certificates(idp: Element) -> list[SigningCertificate]:
    certificates: list[SigningCertificate] = []
    for descriptor in idp.findall(_tag(MD, "KeyDescriptor")):
        if descriptor.get("use", "signing") != "signing":
            continue  # use="encryption"
        for node in descriptor.iter(_tag(DS, "X509Certificate")):
            certificates.append(_certificate(node.text or "", len(certificates) + 1))
    return certificates


def _certificate(text: str, number: int) -> SigningCertificate:
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        cert = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise MetadataInvalid(
            f"The IdP metadata's signing certificate {number} is not a valid X.509 certificate."
        ) from None
    return SigningCertificate(
        subject=cert.subject.rfc4514_string()[:200],
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256_fingerprint=hashlib.sha256(der).hexdigest(),
    )


# --- where it comes from ------------------------------------------------------------------


def metadata_source(config: dict[str, Any], credentials: dict[str, Any] | None = None) -> tuple[str, str]:
    """(inline XML, URL), from the config, else (older integrations) from the credentials."""
    for source in (config, credentials or {}):
        inline, url = source.get("idp_metadata"), source.get("idp_metadata_url")
        inline = inline.strip() if isinstance(inline, str) else ""
        url = url.strip() if isinstance(url, str) else ""
        if inline or url:
            return inline, url
    return "", ""


def fetch_metadata(url: str, *, timeout: float | None = None) -> bytes:
    """The metadata document at `url`; raises `MetadataUnavailable` or `MetadataInvalid`."""
    allow_private = app_settings.allow_private_urls()
    host = urlsplit(url).hostname or "the IdP"
    if not allow_private and not url.lower().startswith("https://"):
        raise MetadataInvalid("The IdP metadata URL must be https://.", field="idp_metadata_url")
    timeout = app_settings.http_timeout() if timeout is None else timeout
    try:
        with request_deadline(timeout):
            response = get_session(USER_AGENT).get(
                url,
                headers={"Accept": "application/samlmetadata+xml, application/xml, text/xml"},
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            )
            if not 200 <= response.status_code < 300:
                response.close()
                raise MetadataUnavailable(
                    f"The IdP metadata URL answered HTTP {response.status_code} ({host}).",
                    http_status=response.status_code,
                )
            return read_capped(response, MAX_METADATA_BYTES)
    except InvalidIPAddress:
        raise MetadataInvalid(
            f"The IdP metadata URL's host {host} is not on a public address; set ALLOW_PRIVATE_URLS for a private one.",
            field="idp_metadata_url",
        ) from None
    except ResponseTooLarge:
        raise MetadataInvalid(
            f"The IdP metadata at {host} is larger than {describe_size(MAX_METADATA_BYTES)}.", field="idp_metadata_url"
        ) from None
    except requests.Timeout:
        raise MetadataUnavailable(f"The IdP metadata URL timed out after {timeout:g} s ({host}).") from None
    except requests.RequestException as error:
        raise MetadataUnavailable(f"Could not fetch the IdP metadata ({type(error).__name__}, {host}).") from None


def load_metadata(integration: Integration, *, timeout: float | None = None) -> IdpMetadata:
    """The integration's IdP metadata, parsed (fetched first when it is given by URL)."""
    config = integration.config if isinstance(integration.config, dict) else {}
    credentials = integration.credentials if isinstance(integration.credentials, dict) else {}
    inline, url = metadata_source(config, credentials)
    expected = config.get("idp_entity_id") or ""
    if inline:
        return parse_metadata(inline, expected_entity_id=expected)
    if url:
        try:
            return parse_metadata(fetch_metadata(url, timeout=timeout), expected_entity_id=expected)
        except MetadataInvalid as error:
            if error.field == "idp_metadata":  # the document behind the URL, not the inline key
                error.field = "idp_metadata_url"
            raise
    raise MetadataInvalid("No IdP metadata: set config.idp_metadata or config.idp_metadata_url.")


# --- validation at save time (integrations/validation.py) ---------------------------------


def bearer_configured(config: dict[str, Any]) -> bool:
    """Whether the integration mints tokens with the SAML bearer grant (`token_url` set)."""
    return bool(config.get("token_url"))


def config_errors(config: dict[str, Any]) -> dict[str, list[str]]:
    """Errors per config key of a `saml` integration (its values' shapes are checked already)."""
    errors: dict[str, list[str]] = {}
    inline, url = config.get("idp_metadata"), config.get("idp_metadata_url")
    if inline and url:
        errors["idp_metadata"] = ["Set idp_metadata or idp_metadata_url, not both."]
    elif inline:
        try:
            parse_metadata(inline, expected_entity_id=config.get("idp_entity_id") or "")
        except MetadataInvalid as error:
            errors[error.field] = [error.message]
    elif url:
        allow_private = app_settings.allow_private_urls()
        try:
            validate_public_url(url, allow_private=allow_private)
        except ValidationError as error:
            errors["idp_metadata_url"] = error.messages
        else:
            if not allow_private and not url.lower().startswith("https://"):
                # the certificates it serves decide whose signatures are trusted
                errors["idp_metadata_url"] = ["The URL must be https://."]
    if bearer_configured(config):
        for key in ("issuer", "subject"):
            if not config.get(key):
                errors[key] = ["Required for the SAML bearer grant (token_url is set)."]
        lifetime = config.get("assertion_lifetime_seconds")
        if lifetime is not None and lifetime > MAX_ASSERTION_LIFETIME:
            errors["assertion_lifetime_seconds"] = [f"At most {MAX_ASSERTION_LIFETIME} seconds."]
    return errors


def metadata_missing(config: dict[str, Any], credentials: dict[str, Any]) -> str:
    """Why the integration names no IdP metadata, or ""."""
    if any(metadata_source(config, credentials)):
        return ""
    return "Provide the IdP metadata (config.idp_metadata) or its URL (config.idp_metadata_url)."
