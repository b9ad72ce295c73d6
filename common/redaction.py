"""The one way secrets are kept out of what we store, log and show.

- `redact(text, secrets)`: every known secret value (4+ characters) in a text is replaced,
  longest first, so `last_error`, a webhook log's response excerpt or a provider's error
  message never carries a token, a key or a header value we sent.
- `is_sensitive_name(name)` / `mask_sensitive(mapping)`: values whose *names* look secret
  (auth, token, key, secret, cookie, password, session, credential) are shown as
  `REDACTED`, e.g. a webhook's custom headers in the API and in attempt logs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
SENSITIVE_NAME = re.compile(r"auth|token|key|secret|cookie|password|session|credential", re.IGNORECASE)


def is_sensitive_name(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name))


def _b64_forms(raw: bytes) -> set[str]:
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return {standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")}


def encoded_forms(secret: str) -> set[str]:
    """A secret as it may appear in an echoed request: plain, URL-encoded and base64."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    forms |= _b64_forms(secret.encode())
    return forms


def redact(text: str, secrets: Iterable[Any], *, basic_pairs: Iterable[tuple[str, str]] = ()) -> str:
    """`text` with every secret value (of 4+ characters) replaced by `REDACTED`, in its
    plain, URL-encoded and base64 forms; `basic_pairs` also hides `base64(user:password)`
    as sent in an `Authorization: Basic` header (e.g. client id and client secret).

    Redact before truncating: a cut secret no longer matches.
    """
    values = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
    forms: set[str] = set()
    for secret in values:
        forms |= encoded_forms(secret)
    for user, password in basic_pairs:
        if isinstance(user, str) and isinstance(password, str) and password:
            forms |= _b64_forms(f"{user}:{password}".encode())
    for form in sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def sensitive_values(mapping: Mapping[str, str] | None) -> list[str]:
    """The values stored under sensitive names (e.g. an `Authorization` header's value)."""
    return [value for name, value in (mapping or {}).items() if is_sensitive_name(name) and isinstance(value, str)]


def mask_sensitive(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of `mapping` whose sensitive-named values read `REDACTED`."""
    return {name: (REDACTED if is_sensitive_name(name) else value) for name, value in (mapping or {}).items()}


# `name=value`, `name: value`, `"name": "value"` where the name looks secret; the value may
# carry an auth scheme (`Authorization: Bearer …`). Used on log lines (common/logs.py).
_SENSITIVE_ASSIGNMENT = re.compile(
    r"""(?P<name>[\w.-]*(?:auth|token|key|secret|cookie|password|session|credential)[\w.-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*["']?)"""
    r"""(?!\[redacted\])(?P<value>(?:(?:Bearer|Basic|Token|Digest)\s+)?[^\s"'&,;)}\]]+)""",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+(?P<value>[A-Za-z0-9._~+/=-]{4,})")


def redact_assignments(text: str) -> str:
    """`text` with the values of sensitive-named assignments (`client_secret=…`,
    `Authorization: Bearer …`, `"api_key": "…"`) and bearer/basic credentials replaced by
    `REDACTED`: for text whose secrets are not known by value, such as a log line."""
    text = _SENSITIVE_ASSIGNMENT.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    return _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
