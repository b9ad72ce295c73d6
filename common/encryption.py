"""Key rotation for every encrypted column of every installed app.

`manage.py reencrypt_credentials` calls `reencrypt_all`; `--check` calls `check_keys`.
Both work on the stored Fernet tokens themselves (never on plain text), over every
`fernet_fields.EncryptedField` that `common.fields.encrypted_fields()` finds, in batches of
primary keys, so they can run beside live traffic and be re-run after an interruption.

A stored value is, for the current FERNET_KEYS:
- `current`: the first key decrypts it;
- `stale`: only another key decrypts it (it needs `reencrypt_credentials` before that key
  can be dropped);
- `undecryptable`: no key decrypts it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.db import connection, models, transaction
from django.db.models import ExpressionWrapper, F
from fernet_fields import EncryptedField

from .fields import UNDECRYPTABLE_HELP, clear_fernet_caches, encrypted_fields
from .text import count_of, model_label

CURRENT, STALE, UNDECRYPTABLE = "current", "stale", "undecryptable"

Progress = Callable[[str, int, int], None]


class CredentialsUndecryptable(Exception):
    pass


@dataclass
class FieldCounts:
    current: int = 0
    stale: int = 0
    undecryptable: int = 0
    reencrypted: int = 0


@dataclass
class KeyReport:
    """Counts per encrypted column, keyed `app_label.Model.field`."""

    fields: dict[str, FieldCounts] = field(default_factory=dict)

    def total(self, attribute: str) -> int:
        return sum(getattr(counts, attribute) for counts in self.fields.values())

    def lines(self, attribute: str) -> list[str]:
        return [f"{label}: {getattr(c, attribute)}" for label, c in self.fields.items() if getattr(c, attribute)]


class _Keys:
    """The keys of one field as `fernet_fields` derives them (HKDF unless FERNET_USE_HKDF is off)."""

    def __init__(self, model_field: EncryptedField) -> None:
        fernets = [Fernet(key) for key in model_field.fernet_keys]
        self.first = fernets[0]
        self.all = MultiFernet(fernets)

    def classify(self, token: bytes) -> str:
        try:
            self.first.decrypt(token)
            return CURRENT
        except InvalidToken:
            pass
        try:
            self.all.decrypt(token)
            return STALE
        except InvalidToken:
            return UNDECRYPTABLE


def _raw(name: str) -> ExpressionWrapper:
    # The stored token as bytes, without the field's decrypting converter.
    return ExpressionWrapper(F(name), output_field=models.BinaryField())


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column
    return field.column


def _write_tokens(model: type[models.Model], pk, tokens: dict[str, bytes]) -> None:
    """UPDATE the stored tokens as they are. Not `QuerySet.update()`: `fernet_fields` would
    encrypt whatever it is given, an expression included. Leaves updated_at alone."""
    meta, quote = model._meta, connection.ops.quote_name
    columns = ", ".join(f"{quote(_column(model, name))} = %s" for name in tokens)
    database: Any = connection  # the DB-API module is on the wrapper, untyped
    params = [database.Database.Binary(token) for token in tokens.values()]
    params.append(meta.pk.get_db_prep_value(pk, connection))
    sql = f"UPDATE {quote(meta.db_table)} SET {columns} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608 (names from _meta)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _walk(*, write: bool, batch_size: int, progress: Progress | None) -> KeyReport:
    clear_fernet_caches()
    report = KeyReport()
    for model, model_fields in encrypted_fields():
        names = [f.name for f in model_fields]
        keys = {f.name: _Keys(f) for f in model_fields}
        counts = {name: FieldCounts() for name in names}
        for name in names:
            report.fields[f"{model._meta.label}.{name}"] = counts[name]
        label = model_label(model)
        pks = list(model._base_manager.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch_size):
            batch = pks[start : start + batch_size]
            with transaction.atomic():
                rows = model._base_manager.filter(pk__in=batch)
                if write:
                    rows = rows.select_for_update()
                for pk, *tokens in rows.values_list("pk", *(_raw(name) for name in names)):
                    changes = {}
                    for name, token in zip(names, tokens, strict=True):
                        if token is None:
                            continue
                        token = bytes(token)
                        state = keys[name].classify(token)
                        setattr(counts[name], state, getattr(counts[name], state) + 1)
                        if write and state == STALE:
                            rotated = keys[name].all.rotate(token)
                            changes[name] = rotated
                            counts[name].reencrypted += 1
                    if changes:
                        _write_tokens(model, pk, changes)
            if progress:
                progress(label, start + len(batch), len(pks))
    return report


def check_keys(*, batch_size: int = 500, progress: Progress | None = None) -> KeyReport:
    """Count current, stale and undecryptable values; changes nothing."""
    return _walk(write=False, batch_size=batch_size, progress=progress)


def reencrypt_all(*, batch_size: int = 200, progress: Progress | None = None) -> KeyReport:
    """Re-encrypt every stale value with the first key of FERNET_KEYS.

    Each batch is a transaction with its rows locked. Values no key decrypts are left as
    they are; after everything else is done, `CredentialsUndecryptable` says how many.
    """
    report = _walk(write=True, batch_size=batch_size, progress=progress)
    if report.total(UNDECRYPTABLE):
        where = ", ".join(report.lines(UNDECRYPTABLE))
        raise CredentialsUndecryptable(
            f"{count_of(report.total(UNDECRYPTABLE), 'value')} {UNDECRYPTABLE_HELP} again ({where}); "
            "every other value was re-encrypted. Keep the old key in the list until this succeeds."
        )
    return report
