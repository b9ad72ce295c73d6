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


#: (organization id or None for every organization, event type) -> days
Overrides = dict[tuple[object, str], int]


def retention_overrides() -> Overrides:
    """Event types kept for their own number of days: catalogue events registered with
    `retention_days`, and organizations' custom event types that set it."""
    from ..events import event_definitions
    from ..models import EventType

    overrides: Overrides = {
        (None, name): d.retention_days for name, d in event_definitions().items() if d.retention_days is not None
    }
    for organization_id, name, days in EventType.objects.filter(retention_days__isnull=False).values_list(
        "organization_id", "name", "retention_days"
    ):
        if days is not None:
            overrides[(organization_id, name)] = days
    return overrides


def _of_types(keys: list[tuple[object, str]], type_field: str) -> Q:
    query = Q(pk__in=[])
    for organization_id, name in keys:
        query |= (
            Q(**{type_field: name})
            if organization_id is None
            else Q(organization_id=organization_id, **{type_field: name})
        )
    return query


def _scopes(days: int, overrides: Overrides) -> list[tuple[int, Q, Q, Q]]:
    """(days, logs Q, deliveries Q, events Q) for each retention in force: each type with
    its own, then the rest with `days`."""
    by_days: dict[int, list[tuple[object, str]]] = {}
    for key, type_days in overrides.items():
        by_days.setdefault(type_days, []).append(key)
    scopes = [
        (type_days, _of_types(keys, "event_type"), _of_types(keys, "event__type"), _of_types(keys, "type"))
        for type_days, keys in sorted(by_days.items())
    ]
    keys = list(overrides)
    scopes.append((days, ~_of_types(keys, "event_type"), ~_of_types(keys, "event__type"), ~_of_types(keys, "type")))
    return scopes


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

    The retention is `older_than_days` (default WEBHOOKS_LOG_RETENTION_DAYS), except for the
    event types that set their own (`retention_overrides`): theirs applies to their logs,
    deliveries and events, shorter or longer.

    `dry_run` deletes nothing and counts what a run would delete, orphans included: the
    events whose every delivery is about to be pruned count too."""
    days = app_settings.log_retention_days() if older_than_days is None else older_than_days
    if days < 0 or batch_size < 1:
        raise ValidationError("older_than_days must be >= 0 and batch_size >= 1.")
    result = PruneResult()
    now = timezone.now()
    for scope_days, of_logs, of_deliveries, of_events in _scopes(days, retention_overrides()):
        cutoff = now - timedelta(days=scope_days)
        _prune_scope(cutoff, of_logs, of_deliveries, of_events, result, batch_size, dry_run, progress)
    return result


def _prune_scope(
    cutoff, of_logs: Q, of_deliveries: Q, of_events: Q, result: PruneResult, batch_size, dry_run, progress
):
    logs = WebhookLog.objects.filter(of_logs, created_at__lt=cutoff)
    deliveries = Delivery.objects.filter(of_deliveries).filter(_finished_before(cutoff))
    any_delivery = Delivery.objects.filter(event=OuterRef("pk"))
    orphans = Event.objects.filter(of_events, created_at__lt=cutoff).exclude(Exists(any_delivery))
    result.orphans_kept += Event.objects.filter(of_events, created_at__gte=cutoff).exclude(Exists(any_delivery)).count()
    if dry_run:
        kept_delivery = any_delivery.exclude(_finished_before(cutoff))
        would_be_orphans = Event.objects.filter(of_events, created_at__lt=cutoff).exclude(Exists(kept_delivery))
        result.logs += logs.count()
        result.deliveries += deliveries.count()
        result.events += would_be_orphans.count()
        return
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
