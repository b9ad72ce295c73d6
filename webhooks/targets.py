"""Which webhook targets are allowed (SSRF protection at create/update time).

The same rule holds again at connect time, where requests-hardened pins the connection to
the address it checked (DNS rebinding): see `webhooks/http.py`.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from . import app_settings

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
HEADER_NAME_CHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def validate_target_url(url: str) -> None:
    """Raise ValidationError unless `url` is an http(s) URL to a public address."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter a valid URL.") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("The URL must be http:// or https:// with a host.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("Credentials in the URL are not allowed; use the webhook's headers.")
    if app_settings.allow_private_urls():
        return
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise ValidationError(f"The host {parts.hostname!r} could not be resolved.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not is_public_address(address):
            raise ValidationError(
                "The URL resolves to a loopback, private, link-local, multicast or reserved address, "
                "which is not allowed."
            )


def validate_headers(headers: object) -> dict[str, str]:
    if not isinstance(headers, dict):
        raise ValidationError("Headers must be an object of header names to string values.")
    cleaned: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not set(name) <= HEADER_NAME_CHARS:
            raise ValidationError(f"Invalid header name {name!r}.")
        if not isinstance(value, str) or "\r" in value or "\n" in value or len(value) > 4096:
            raise ValidationError(f"The value of header {name!r} must be a single-line string.")
        lowered = name.lower()
        if lowered in FORBIDDEN_HEADERS or lowered.startswith("webhook-"):
            raise ValidationError(f"The header {name!r} is set by the delivery itself and cannot be overridden.")
        cleaned[name] = value
    if len(cleaned) > 20:
        raise ValidationError("At most 20 custom headers.")
    return cleaned
