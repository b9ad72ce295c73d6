"""The one way secrets are kept out of what we store, log and show.

- `redact(text, secrets)`: every known secret value (4+ characters) in a text is replaced,
  longest first, so `last_error`, a webhook log's response excerpt or a provider's error
  message never carries a token, a key or a header value we sent.
- `is_sensitive_name(name)` / `mask_sensitive(mapping)`: values whose *names* look secret
  (auth, token, key, secret, cookie, password, session, credential) are shown as
  `REDACTED`, e.g. a webhook's custom headers in the API and in attempt logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
SENSITIVE_NAME = re.compile(r"auth|token|key|secret|cookie|password|session|credential", re.IGNORECASE)


def is_sensitive_name(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name))


def redact(text: str, secrets: Iterable[Any]) -> str:
    """`text` with every secret value (of 4+ characters) replaced by `REDACTED`."""
    values = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
    for secret in sorted(values, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def sensitive_values(mapping: Mapping[str, str] | None) -> list[str]:
    """The values stored under sensitive names (e.g. an `Authorization` header's value)."""
    return [value for name, value in (mapping or {}).items() if is_sensitive_name(name) and isinstance(value, str)]


def mask_sensitive(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of `mapping` whose sensitive-named values read `REDACTED`."""
    return {name: (REDACTED if is_sensitive_name(name) else value) for name, value in (mapping or {}).items()}
