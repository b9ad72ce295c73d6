"""Subscriber authentication settings, validated when saved (docs/WEBHOOKS.md).

- `auth`: `{"type": "oauth2_client_credentials", "token_url", "client_id", "client_secret",
  "scope"?, "audience"?}`. Stored encrypted whole; reads show `client_secret_set`, never the
  secret. An update may leave `client_secret` out to keep the stored one, unless the token
  URL moves to another origin (a secret is never sent to a host it was not entered for).
- `client_certificate`: a PEM client certificate and its (unencrypted) private key, for
  mTLS. Parsed with `cryptography`: the key must match the certificate, which must be valid
  now. Stored encrypted, write-only; reads show `client_certificate_set` and
  `client_certificate_expires_at`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError

from common.fields import is_readable
from common.ssrf import validate_public_url

from . import app_settings

OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials"
AUTH_KEYS = {"type", "token_url", "client_id", "client_secret", "scope", "audience"}
MAX_VALUE_LENGTH = 2000
MAX_CERTIFICATE_BYTES = 64 * 1024


def _origin(url: str) -> tuple[str, str, int | None]:
    from .services.webhooks import url_origin  # services import this module

    return url_origin(url)


def validate_auth(value: Any, *, stored: Any = None) -> dict[str, str] | None:
    """The auth settings to store (None: no auth). `stored` is the webhook's current
    settings, whose `client_secret` an update may keep by leaving it out."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise ValidationError("An object: {type, token_url, client_id, client_secret, scope?, audience?}.")
    unknown = set(value) - AUTH_KEYS
    if unknown:
        raise ValidationError(f"Unknown keys: {', '.join(sorted(map(str, unknown)))}.")
    if value.get("type") != OAUTH2_CLIENT_CREDENTIALS:
        raise ValidationError(f'type: the only type is "{OAUTH2_CLIENT_CREDENTIALS}".')
    for key in ("token_url", "client_id", "client_secret", "scope", "audience"):
        item = value.get(key)
        if item is not None and (not isinstance(item, str) or len(item) > MAX_VALUE_LENGTH):
            raise ValidationError(f"{key}: a string of at most {MAX_VALUE_LENGTH} characters.")
    for key in ("token_url", "client_id"):
        if not value.get(key):
            raise ValidationError(f"{key}: required.")
    try:
        validate_public_url(value["token_url"], allow_private=app_settings.allow_private_urls())
    except ValidationError as exc:
        raise ValidationError(f"token_url: {exc.messages[0]}") from None
    cleaned = {k: v for k, v in value.items() if v not in (None, "")}
    if "client_secret" not in cleaned:
        previous = stored if stored is not None and is_readable(stored) else None
        if not previous or not previous.get("client_secret"):
            raise ValidationError("client_secret: required.")
        if _origin(previous["token_url"]) != _origin(cleaned["token_url"]):
            raise ValidationError(
                "client_secret: the token URL moves to another host: enter the client secret again "
                "(a secret is never sent to a host it was not entered for)."
            )
        cleaned["client_secret"] = previous["client_secret"]
    return cleaned


def auth_for_reading(auth: Any) -> dict[str, Any] | None:
    """What reads show: the settings without the secret, and whether one is set."""
    if auth is None:
        return None
    if not is_readable(auth):
        return {"type": OAUTH2_CLIENT_CREDENTIALS, "readable": False, "client_secret_set": False}
    shown: dict[str, Any] = {k: v for k, v in auth.items() if k != "client_secret"}
    shown["client_secret_set"] = bool(auth.get("client_secret"))
    return shown


def validate_client_certificate(value: Any) -> tuple[str | None, dt.datetime | None]:
    """The PEM to store and the certificate's expiry, or a ValidationError saying what is wrong."""
    if value is None or value == "":
        return None, None
    if not isinstance(value, str) or len(value.encode()) > MAX_CERTIFICATE_BYTES:
        raise ValidationError(f"PEM text (certificate and private key) of at most {MAX_CERTIFICATE_BYTES} bytes.")
    data = value.encode()
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValidationError("No PEM certificate found (expected -----BEGIN CERTIFICATE-----).") from None
    key_start = next(
        (
            data.find(m)
            for m in (b"-----BEGIN PRIVATE KEY", b"-----BEGIN RSA PRIVATE KEY", b"-----BEGIN EC PRIVATE KEY")
            if m in data
        ),
        -1,
    )
    if key_start < 0:
        raise ValidationError("No PEM private key found (expected -----BEGIN PRIVATE KEY-----, unencrypted).")
    try:
        key = serialization.load_pem_private_key(data[key_start:], password=None)
    except (ValueError, TypeError):
        raise ValidationError("The private key cannot be read (it must be PEM and not password-protected).") from None
    certificate = certificates[0]
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != certificate.public_key().public_bytes(*raw):
        raise ValidationError("The private key does not match the certificate.")
    now = dt.datetime.now(dt.UTC)
    if certificate.not_valid_after_utc <= now:
        raise ValidationError(f"The certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC.")
    if certificate.not_valid_before_utc > now:
        raise ValidationError(f"The certificate is not valid before {certificate.not_valid_before_utc:%Y-%m-%d} UTC.")
    return value, certificate.not_valid_after_utc
