"""Retention: prune old attempt logs, finished deliveries and orphaned events in batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import app_settings
from ..models import Delivery, Event, WebhookLog

logger = logging.getLogger(__name__)


# --- retention --------------------------------------------------------------------------


@dataclass
class PruneResult:
    logs: int = 0
    deliveries: int = 0
    events: int = 0


def logs_prune(
    *,
    older_than_days: int | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress=None,
) -> PruneResult:
    """Delete attempt logs older than the retention, then finished deliveries and the
    events left without deliveries, in batches so no table is locked for long."""
    days = app_settings.log_retention_days() if older_than_days is None else older_than_days
    if days < 0 or batch_size < 1:
        raise ValidationError("older_than_days must be >= 0 and batch_size >= 1.")
    cutoff = timezone.now() - timedelta(days=days)
    result = PruneResult()
    logs = WebhookLog.objects.filter(created_at__lt=cutoff)
    deliveries = Delivery.objects.filter(
        state__in=[Delivery.State.SUCCEEDED, Delivery.State.FAILED], finished_at__lt=cutoff
    )
    events = Event.objects.filter(created_at__lt=cutoff, deliveries__isnull=True)
    if dry_run:
        return PruneResult(logs=logs.count(), deliveries=deliveries.count(), events=events.count())
    for name, queryset in (("logs", logs), ("deliveries", deliveries), ("events", events)):
        model = queryset.model
        while True:
            ids = list(queryset.values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            with transaction.atomic():
                # The filter again: a row re-armed (recover) since it was listed stays.
                batch = queryset.filter(pk__in=ids)
                if model is WebhookLog:  # nothing refers to logs: skip the collector
                    deleted = batch._raw_delete(batch.db)
                else:
                    deleted = batch.delete()[1].get(model._meta.label, 0)
            setattr(result, name, getattr(result, name) + deleted)
            if progress:
                progress(name, getattr(result, name))
    return result
