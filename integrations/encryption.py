"""Key rotation: re-encrypt stored secrets with the first key of FERNET_KEYS."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.fernet import InvalidToken
from django.db import models, transaction
from fernet_fields import EncryptedField

from .fields import clear_fernet_caches


class CredentialsUndecryptable(Exception):
    pass


def _encrypted_models() -> list[tuple[type[models.Model], list[str]]]:
    from django.apps import apps

    found = []
    for model in apps.get_app_config("integrations").get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if names:
            found.append((model, names))
    return found


def reencrypt_all(*, batch_size: int = 200, progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """Decrypt (with any key) and re-encrypt (with the first) every encrypted value.

    Works in batches of primary keys, each in its own transaction with the rows locked,
    so it can run beside live traffic and be re-run after an interruption.
    """
    clear_fernet_caches()
    counts: dict[str, int] = {}
    for model, field_names in _encrypted_models():
        label = model._meta.verbose_name_plural
        pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
        done = 0
        for start in range(0, len(pks), batch_size):
            batch = pks[start : start + batch_size]
            with transaction.atomic():
                try:
                    rows = list(model.objects.select_for_update().filter(pk__in=batch).only("pk", *field_names))
                except InvalidToken:
                    raise CredentialsUndecryptable(
                        f"A {model._meta.verbose_name} in rows {start + 1}-{start + len(batch)} cannot be decrypted "
                        "with any key in FERNET_KEYS: keep the old key in the list until the command succeeds."
                    ) from None
                for row in rows:
                    # update() encrypts through the field with the first key and leaves updated_at alone.
                    model.objects.filter(pk=row.pk).update(**{name: getattr(row, name) for name in field_names})
            done += len(batch)
            if progress:
                progress(label, done, len(pks))
        counts[str(label)] = done
    return counts
