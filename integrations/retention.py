"""Retention of the call log: prune `ProviderCall` rows older than
`INTEGRATIONS_CALL_LOG_RETENTION_DAYS`, in batches (as webhooks/services/retention.py does
for delivery logs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import app_settings
from .models import ProviderCall


@dataclass
class CallPruneResult:
    calls: int = 0
    older_than_days: int = 0


def provider_calls_prune(
    *,
    older_than_days: int | None = None,
    batch_size: int = 5000,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CallPruneResult:
    """Delete call-log rows older than the retention, `batch_size` at a time so the table is
    never locked for long; with `dry_run`, only count them."""
    days = app_settings.call_log_retention_days() if older_than_days is None else older_than_days
    if days < 0 or batch_size < 1:
        raise ValidationError("older_than_days must be >= 0 and batch_size >= 1.")
    old = ProviderCall.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
    result = CallPruneResult(older_than_days=days)
    if dry_run:
        result.calls = old.count()
        return result
    while True:
        ids = list(old.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            batch = ProviderCall.objects.filter(pk__in=ids)
            result.calls += batch._raw_delete(batch.db)  # nothing refers to call rows
        if progress:
            progress(result.calls)
    return result
