"""Encrypted storage for credentials (django-fernet-fields-v2, MultiFernet over FERNET_KEYS)."""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps
from fernet_fields import EncryptedField, EncryptedTextField

_CACHED_KEY_ATTRIBUTES = ("keys", "fernet_keys", "fernet")


class EncryptedJSONField(EncryptedTextField):
    """A JSON object stored as Fernet ciphertext: the first FERNET_KEYS key encrypts, all decrypt."""

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


def clear_fernet_caches() -> None:
    """Forget the keys every encrypted field cached, so a changed FERNET_KEYS applies.

    `fernet_fields` caches its keys per field instance (`cached_property`); without this,
    a process (or test) that changes FERNET_KEYS would keep using the old ones.
    """
    for model in apps.get_models():
        for model_field in model._meta.get_fields():
            if isinstance(model_field, EncryptedField):
                for attribute in _CACHED_KEY_ATTRIBUTES:
                    model_field.__dict__.pop(attribute, None)
