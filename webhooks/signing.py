"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`; several
signatures are space-separated (after a secret rotation both secrets sign). A secret is
`whsec_` + base64 of 24-64 random bytes; the HMAC key is the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
DEFAULT_TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    pass


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; ValueError when it is malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("A webhook secret starts with 'whsec_'.")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("A webhook secret is 'whsec_' followed by base64.") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"A webhook secret decodes to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes.")
    return key


def sign(*, msg_id: str, timestamp: int, body: bytes, keys: Iterable[bytes]) -> str:
    """The `webhook-signature` header value, one `v1,` signature per key."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode() for key in keys)


def verify(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Verify a received webhook (for receivers); raises InvalidSignature.

    Constant-time comparison; rejects timestamps outside the tolerance (replays).

        from webhooks.signing import verify, InvalidSignature
        try:
            verify(secret="whsec_...", headers=request.headers, body=request.body)
        except InvalidSignature:
            return HttpResponse(status=400)
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise InvalidSignature("Missing webhook-id, webhook-timestamp or webhook-signature.")
    try:
        ts = int(timestamp)
    except ValueError:
        raise InvalidSignature("Invalid webhook-timestamp.") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        raise InvalidSignature("Timestamp outside the tolerance.")
    expected = sign(msg_id=msg_id, timestamp=ts, body=body, keys=[secret_key_bytes(secret)]).encode()
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return
    raise InvalidSignature("No matching signature.")
