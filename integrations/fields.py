"""Encrypted storage for credentials (django-fernet-fields-v2, MultiFernet over FERNET_KEYS)."""

from __future__ import annotations

import json
from typing import Any

from common.fields import EncryptedTextField, clear_fernet_caches

__all__ = ["EncryptedJSONField", "clear_fernet_caches"]


class EncryptedJSONField(EncryptedTextField):
    """A JSON object stored as Fernet ciphertext: the first FERNET_KEYS key encrypts, all decrypt.

    A value no key decrypts loads as `common.fields.Undecryptable` (see there)."""

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def value_to_string(self, obj) -> str:
        # Serialization (dumpdata) must not write secrets in clear text.
        return ""
