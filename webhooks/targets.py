"""Which webhook targets are allowed (SSRF protection at create/update time).

The same rule holds again at connect time, where the delivery client connects to the
address it checked (DNS rebinding): see `webhooks/engine/transport.py`.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from common.ssrf import is_public_address, validate_public_url
from common.text import quoted

from . import app_settings

__all__ = ["is_public_address", "validate_headers", "validate_target_url"]

# Headers a webhook's own `headers` may not set: ours, the transport's and hop-by-hop ones.
FORBIDDEN_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "upgrade",
}
# What `requests` will send: no leading whitespace, no CR/LF (nor other control characters).
HEADER_VALUE = re.compile(r"(?:[^\x00-\x20\x7f][^\x00-\x08\x0a-\x1f\x7f]*)?")
HEADER_NAME_CHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def validate_target_url(url: str) -> None:
    """Raise ValidationError unless `url` is an http(s) URL to a public address."""
    validate_public_url(
        url, allow_private=app_settings.allow_private_urls(), credentials_hint="; use the webhook's headers"
    )


def validate_headers(headers: object) -> dict[str, str]:
    if not isinstance(headers, dict):
        raise ValidationError("Headers must be an object of header names to string values.")
    cleaned: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not set(name) <= HEADER_NAME_CHARS:
            raise ValidationError(f"Invalid header name {quoted(name)}.")
        if not isinstance(value, str) or len(value) > 4096 or not HEADER_VALUE.fullmatch(value):
            raise ValidationError(
                f"The value of header {quoted(name)} must be a single-line string without control characters "
                "or leading whitespace."
            )
        lowered = name.lower()
        if lowered in FORBIDDEN_HEADERS or lowered.startswith("webhook-"):
            raise ValidationError(f"The header {quoted(name)} is set by the delivery itself and cannot be overridden.")
        cleaned[name] = value
    if len(cleaned) > 20:
        raise ValidationError("At most 20 custom headers.")
    return cleaned
