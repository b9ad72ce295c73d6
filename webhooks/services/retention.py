"""Retention: prune old attempt logs, finished deliveries and orphaned events in batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .. import app_settings
from ..models import Delivery, Event, WebhookLog

logger = logging.getLogger(__name__)


# --- retention --------------------------------------------------------------------------


@dataclass
class PruneResult:
    logs: int = 0
    deliveries: int = 0
    #: events older than the cutoff left without deliveries (orphans), pruned last
    events: int = 0
    #: events without deliveries that are newer than the cutoff: kept until they are older
    orphans_kept: int = 0


def _finished_before(cutoff) -> Q:
    return Q(state__in=[Delivery.State.SUCCEEDED, Delivery.State.FAILED], finished_at__lt=cutoff)


def logs_prune(
    *,
    older_than_days: int | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress=None,
) -> PruneResult:
    """Delete attempt logs older than the retention, then finished deliveries, then the
    events older than the retention left without deliveries (orphans: their deliveries were
    pruned, or went with a deleted webhook, or they had no subscriber), in batches so no
    table is locked for long.

    `dry_run` deletes nothing and counts what a run would delete, orphans included: the
    events whose every delivery is about to be pruned count too."""
    days = app_settings.log_retention_days() if older_than_days is None else older_than_days
    if days < 0 or batch_size < 1:
        raise ValidationError("older_than_days must be >= 0 and batch_size >= 1.")
    cutoff = timezone.now() - timedelta(days=days)
    result = PruneResult()
    logs = WebhookLog.objects.filter(created_at__lt=cutoff)
    deliveries = Delivery.objects.filter(_finished_before(cutoff))
    any_delivery = Delivery.objects.filter(event=OuterRef("pk"))
    orphans = Event.objects.filter(created_at__lt=cutoff).exclude(Exists(any_delivery))
    result.orphans_kept = Event.objects.filter(created_at__gte=cutoff).exclude(Exists(any_delivery)).count()
    if dry_run:
        kept_delivery = any_delivery.exclude(_finished_before(cutoff))
        would_be_orphans = Event.objects.filter(created_at__lt=cutoff).exclude(Exists(kept_delivery))
        result.logs, result.deliveries, result.events = logs.count(), deliveries.count(), would_be_orphans.count()
        return result
    for name, queryset in (("logs", logs), ("deliveries", deliveries), ("events", orphans)):
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
