"""Words in messages to people: counts with the noun that agrees with them, and client input
quoted as JSON, never as a Python repr (`"slack"`, not `'slack'` or `['slack']`)."""

from __future__ import annotations

import json
import re
from typing import Any

_VOWELS = "aeiou"
MAX_QUOTED = 200
#: control characters (C0, DEL, C1) and lone UTF-16 surrogates: PostgreSQL refuses NUL and
#: surrogates in text and jsonb, webhook payloads refuse them, and the rest garble logs
CONTROL_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with each control character or lone surrogate replaced by a space: for text
    another party wrote (a provider's error code or description) before we store, log or
    announce it."""
    return CONTROL_TEXT.sub(" ", text)


def plural_of(noun: str) -> str:
    """The regular English plural: "delivery" → "deliveries", "key" → "keys", "check" → "checks"."""
    if noun.endswith("y") and len(noun) > 1 and noun[-2].lower() not in _VOWELS:
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def count_of(count: int, noun: str, plural: str | None = None) -> str:
    """`1 delivery`, `2 deliveries`, `0 deliveries`: the count and the noun that agrees with it."""
    return f"{count} {noun if count == 1 else (plural or plural_of(noun))}"


def model_label(model) -> str:
    """A model's plural name for people, e.g. "OAuth states" (Django's default would say "o auth states")."""
    return MODEL_LABELS.get(model._meta.label, str(model._meta.verbose_name_plural))


# Models whose class name Django cannot turn into words (`OAuthState` → "o auth state").
MODEL_LABELS = {"integrations.OAuthState": "OAuth states"}


def quoted(value: Any) -> str:
    """`"slack"` for a string, the JSON text for anything else; cut at `MAX_QUOTED` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = json.dumps(str(value), ensure_ascii=False)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"
