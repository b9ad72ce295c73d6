"""Retention: prune old attempt logs, finished deliveries and orphaned events in batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .. import app_settings, partitions
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
    #: whole daily partitions of webhook_logs dropped (PostgreSQL); their rows count in `logs`
    partitions_dropped: list[str] = field(default_factory=list)


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
    result.orphans_kept = Event.objects.filter(created_at__gte=cutoff).exclude(Exists(any_delivery)).count()
    # Whole days of logs older than the cutoff go in O(1) (detach + drop); only the
    # boundary day (and the default partition) is left to the batched delete below.
    result.partitions_dropped, result.logs = partitions.drop_partitions_before(cutoff, dry_run=dry_run)
    if dry_run:
        kept_delivery = any_delivery.exclude(_finished_before(cutoff))
        would_be_orphans = Event.objects.filter(created_at__lt=cutoff).exclude(Exists(kept_delivery))
        result.logs = logs.count()  # the partitions' rows included: nothing was dropped
        result.deliveries, result.events = deliveries.count(), would_be_orphans.count()
        return result
    if progress and result.logs:
        progress("logs", result.logs)
    for name, queryset in (("logs", logs),):
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
    result.deliveries = _prune_finished_deliveries(cutoff, batch_size, progress)
    result.events = _prune_orphan_events(cutoff, batch_size, progress)
    return result


def _prune_finished_deliveries(cutoff, batch_size: int, progress) -> int:
    """Finished deliveries older than the cutoff, one state at a time along the
    `(state, finished_at)` index, a keyset window of `batch_size` at a time: each batch
    starts after the last row seen instead of rescanning the index's dead entries."""
    deleted_total = 0
    for state in (Delivery.State.SUCCEEDED, Delivery.State.FAILED):
        old = Delivery.objects.filter(state=state, finished_at__lt=cutoff).order_by("finished_at", "pk")
        after = None
        while True:
            window = old
            if after is not None:
                window = window.filter(Q(finished_at__gt=after[0]) | Q(finished_at=after[0], pk__gt=after[1]))
            rows = list(window.values_list("finished_at", "pk")[:batch_size])
            if not rows:
                break
            after = rows[-1]
            with transaction.atomic():
                # The filter again: a row re-armed (recover) since it was listed stays.
                batch = Delivery.objects.filter(_finished_before(cutoff), pk__in=[pk for _, pk in rows])
                deleted = batch.delete()[1].get(Delivery._meta.label, 0)
            deleted_total += deleted
            if progress and deleted:
                progress("deliveries", deleted_total)
    return deleted_total


def _prune_orphan_events(cutoff, batch_size: int, progress) -> int:
    """Walk the events older than the cutoff along the `created_at` index, a window of
    `batch_size` at a time (keyset: after the last (created_at, id) seen), and delete those
    of the window with NOT EXISTS a delivery. Each batch reads one index window and probes
    the deliveries' `event_id` index per row: the cost is linear in the events walked, never
    an anti-join over the whole tables, and events kept (a delivery still pending) are
    passed once, not re-read by every batch."""
    deleted_total = 0
    after = None
    old = Event.objects.filter(created_at__lt=cutoff).order_by("created_at", "pk")
    while True:
        window = old
        if after is not None:
            window = window.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], pk__gt=after[1]))
        rows = list(window.values_list("created_at", "pk")[:batch_size])
        if not rows:
            break
        after = rows[-1]
        with transaction.atomic():
            batch = Event.objects.filter(pk__in=[pk for _, pk in rows], created_at__lt=cutoff).exclude(
                Exists(Delivery.objects.filter(event=OuterRef("pk")))
            )
            deleted = batch.delete()[1].get(Event._meta.label, 0)
        if deleted:
            deleted_total += deleted
            if progress:
                progress("events", deleted_total)
    return deleted_total
