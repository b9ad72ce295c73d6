"""Encrypted model fields that keep reading when a value cannot be decrypted.

`fernet_fields` (MultiFernet over FERNET_KEYS: the first key encrypts, all decrypt) raises
`InvalidToken` while *loading* a row whose value was encrypted with a key no longer in
FERNET_KEYS, so one such row makes every list, page and query that touches it fail. The
fields here load it as an `Undecryptable` value instead:

- the row reads; `credentials_readable` / `secret_readable` say which values are affected;
- saving the row writes the stored ciphertext back unchanged (put the old key back and the
  value reads again; nothing is lost by an unrelated edit);
- *using* the value (an attribute, `bool()`, iteration, `in`, indexing) raises
  `UndecryptableValueError`, an `InvalidToken`, with a message saying what to do.

Serialization (`dumpdata` in every format, `django.core.serializers`) writes every
encrypted field as "": a dump never carries a secret, in clear or otherwise.

The columns are the same as `fernet_fields`', so the fields deconstruct as their
`fernet_fields` parents and need no migration.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import models
from django.utils.encoding import force_str
from fernet_fields import EncryptedField
from fernet_fields import fields as fernet

UNDECRYPTABLE_HELP = (
    "cannot be decrypted with FERNET_KEYS: put the old key back in FERNET_KEYS and run "
    "`manage.py reencrypt_credentials`"
)

_CACHED_KEY_ATTRIBUTES = ("keys", "fernet_keys", "fernet")


class UndecryptableValueError(InvalidToken, AttributeError):
    """An `Undecryptable` value was used. An `AttributeError` too, so `hasattr()` probes
    (Django's query compiler asks `hasattr(value, "resolve_expression")`) answer False."""


class Undecryptable:
    """A stored value none of FERNET_KEYS can decrypt; holds its ciphertext, never plain text."""

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: bytes) -> None:
        self.ciphertext = ciphertext

    def _refuse(self, *args: Any) -> NoReturn:
        raise UndecryptableValueError(f"This value {UNDECRYPTABLE_HELP}.")

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    __bool__ = __iter__ = __len__ = __contains__ = __getitem__ = _refuse

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Undecryptable) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)

    def __str__(self) -> str:
        return "[cannot be decrypted with FERNET_KEYS]"

    __repr__ = __str__


def is_readable(value: Any) -> bool:
    return not isinstance(value, Undecryptable)


# `fernet_fields` has no type information: the mixin's parents are untyped fields.
_FieldBase: Any = object


class TolerantEncryptedMixin(_FieldBase):
    """Loads an undecryptable value as `Undecryptable`; saves one back byte for byte."""

    def from_db_value(self, value, expression, connection, *args):
        if value is None:
            return None
        ciphertext = bytes(value)
        try:
            plain = self.fernet.decrypt(ciphertext)
        except InvalidToken:
            return Undecryptable(ciphertext)
        return self.to_python(force_str(plain))

    def get_db_prep_save(self, value, connection):
        if isinstance(value, Undecryptable):
            return connection.Database.Binary(value.ciphertext)
        return super().get_db_prep_save(value, connection)

    def value_to_string(self, obj) -> str:
        # What the serializers (dumpdata json/xml/yaml) write: never the plain text.
        return ""

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if path.startswith(f"{__name__}."):
            path = f"fernet_fields.fields.{path.rsplit('.', 1)[1]}"
        return name, path, args, kwargs


class EncryptedTextField(TolerantEncryptedMixin, fernet.EncryptedTextField):
    pass


class EncryptedCharField(TolerantEncryptedMixin, fernet.EncryptedCharField):
    pass


def encrypted_fields() -> list[tuple[type[models.Model], list[EncryptedField]]]:
    """Every model of every installed app with `fernet_fields` encrypted columns."""
    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if fields:
            found.append((model, fields))
    return found


def clear_fernet_caches() -> None:
    """Forget the keys every encrypted field cached, so a changed FERNET_KEYS applies.

    `fernet_fields` caches its keys per field instance (`cached_property`): a process keeps
    the keys it started with until it restarts. `common.apps` calls this when FERNET_KEYS
    changes through `override_settings` (tests).
    """
    for _model, fields in encrypted_fields():
        for field in fields:
            for attribute in _CACHED_KEY_ATTRIBUTES:
                field.__dict__.pop(attribute, None)
