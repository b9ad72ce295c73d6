"""Which outbound URLs this service may fetch (SSRF protection), shared by every app.

A URL is allowed when it is http(s), has a host and no credentials, and every address
its host resolves to is public (not loopback, private, link-local, multicast, reserved,
unspecified or an IPv4-mapped form of those). Numeric host spellings (decimal
`2130706433`, hex `0x7f000001`, octal `017700000001`) resolve like any name, so they are
caught by the address check. Call sites pass `allow_private` from `ALLOW_PRIVATE_URLS`
(through their app's `app_settings.allow_private_urls()`) for development and tests.

This is the check at save time; the same rule holds again at connect time, where
requests-hardened (common/http.py) or, for webhook deliveries, the engine's own client
(webhooks/engine/transport.py, with this rule alone) connects to the address it checked
(DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

from common.text import quoted

NOT_PUBLIC = "The URL resolves to a loopback, private, link-local, multicast or reserved address, which is not allowed."


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The one address rule, at save time and (on top of requests-hardened's) at connect time."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address) and (ip.is_site_local or ip.sixtofour is not None):
        return False  # deprecated site-local; 6to4 can embed any IPv4 address
    return (
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not any(ip in net for net in EXTRA_BLOCKED_NET_RANGES)
    )


def validate_public_url(url: str, *, allow_private: bool, credentials_hint: str = "") -> None:
    """Raise ValidationError unless `url` is an http(s) URL to a public address."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("Enter a valid URL.") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("The URL must be http:// or https:// with a host.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(f"Credentials in the URL are not allowed{credentials_hint}.")
    if allow_private:
        return
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise ValidationError(f"The host {quoted(parts.hostname)} could not be resolved.") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not is_public_address(address):
            raise ValidationError(NOT_PUBLIC)
