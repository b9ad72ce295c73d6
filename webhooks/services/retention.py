"""Retention: prune old attempt logs, finished deliveries and orphaned events in batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
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
    #: whole daily partitions dropped (PostgreSQL: webhook_logs, webhook_deliveries and
    #: webhook_events, in that order); their rows count in `logs`, `deliveries`, `events`
    partitions_dropped: list[str] = field(default_factory=list)


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
    scopes = _scopes(days, retention_overrides())
    # Whole days of logs older than every retention in force go in O(1) (PostgreSQL: detach
    # and drop the daily partitions); the rest (the boundary days, types kept longer or
    # shorter, the default partition, SQLite) is deleted in batches below.
    oldest_cutoff = now - timedelta(days=max(scope_days for scope_days, *_ in scopes))
    _drop_partitions(oldest_cutoff, result, dry_run, progress)
    for scope_days, of_logs, of_deliveries, of_events in scopes:
        cutoff = now - timedelta(days=scope_days)
        _prune_scope(cutoff, of_logs, of_deliveries, of_events, result, batch_size, dry_run, progress)
    return result


_FINISHED_BEFORE_SQL = "state IN ('succeeded', 'failed') AND finished_at IS NOT NULL AND finished_at < %s"


def _drop_partitions(cutoff, result: PruneResult, dry_run: bool, progress) -> None:
    """PostgreSQL: detach and drop the whole days older than `cutoff` (older than every
    retention in force) of the logs, then the deliveries, then the events. A day's rows that
    must stay go to the default partition first: deliveries not finished before the cutoff,
    events a remaining delivery refers to. Nothing refers to a row dropped for longer than
    a moment: the logs of a dropped delivery in later days go right after its day is
    detached (what stays is decided under the detach's lock, so a replay meanwhile loses
    nothing), the events go after the deliveries."""
    dropped, rows = partitions.drop_partitions_before(cutoff, dry_run=dry_run, table=partitions.LOGS)
    result.partitions_dropped += dropped
    if not dry_run:
        result.logs += rows
        if progress and rows:
            progress("logs", result.logs)

    # A log of a delivery dropped goes with it, whatever its age (e.g. a replay's attempt,
    # or clock skew), as the batches below do: once each day is detached and its kept rows
    # moved out (one transaction a day, under the lock), the detached tables hold exactly
    # the deliveries dropped, and their logs are deleted by one join with them all before
    # they are dropped. A replay that re-armed one before its detach kept it, with its logs.
    def logs_of_dropped(cursor, names: list[str]) -> None:
        dropped_ids = " UNION ALL ".join(f'SELECT id FROM "{name}"' for name in names)  # noqa: S608 - partitions' names
        # A join, not `IN (...)`: the planner would guess 200 distinct ids for the union
        # (no statistics) and probe every log partition's index once per id.
        cursor.execute(f"DELETE FROM webhook_logs l USING ({dropped_ids}) d WHERE l.delivery_id = d.id")  # noqa: S608 - partitions' names
        result.logs += cursor.rowcount

    dropped, rows = partitions.drop_partitions_before(
        cutoff,
        dry_run=dry_run,
        table=partitions.DELIVERIES,
        keep=f"NOT ({_FINISHED_BEFORE_SQL})",
        keep_params=[cutoff],
        before_drop=logs_of_dropped,
    )
    result.partitions_dropped += dropped
    if not dry_run:
        result.deliveries += rows
        if progress and rows:
            progress("deliveries", result.deliveries)
    old_events = partitions.old_partitions(cutoff, partitions.EVENTS)
    if old_events and dry_run:  # their rows are counted with the batches' (would-be orphans)
        result.partitions_dropped += [p.name for p in old_events]
    elif old_events:
        # The events of the days dropped that a remaining delivery refers to (pending ones
        # moved to the default partition above, or any later one): one join, before the
        # drops. No code path creates a delivery for an event older than the retention
        # (replays re-arm the delivery they replay), so none appears meanwhile.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT d.event_id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id "
                "WHERE e.created_at < %s",
                [old_events[-1].end],
            )
            referenced = [row[0] for row in cursor.fetchall()]
        dropped, rows = partitions.drop_partitions_before(
            cutoff, table=partitions.EVENTS, keep="id = ANY(%s::uuid[])", keep_params=[referenced]
        )
        result.partitions_dropped += dropped
        result.events += rows
        if progress and rows:
            progress("events", result.events)
    if partitions.is_partitioned(table=partitions.EVENTS) and not dry_run:
        _prune_event_keys(cutoff)


def _prune_event_keys(cutoff, batch_size: int = 10_000) -> None:
    """Idempotency keys older than `cutoff` whose event is gone (pruned, erased) release
    their key: deleted a window of the `created_at` index at a time (keyset on
    `(created_at, event_id)`: the keys of kept events are passed once)."""
    table = partitions.EVENT_KEYS
    after = None
    while True:
        where, params = "created_at < %s", [cutoff]
        if after is not None:
            where += " AND (created_at, event_id) > (%s, %s)"
            params += list(after)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"WITH w AS (SELECT ctid, event_id, created_at FROM {table} WHERE {where} "  # noqa: S608 - a module constant
                "ORDER BY created_at, event_id LIMIT %s), "
                f"gone AS (DELETE FROM {table} k USING w WHERE k.ctid = w.ctid "
                "AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = w.event_id) RETURNING 1) "
                "SELECT created_at, event_id FROM w ORDER BY created_at DESC, event_id DESC LIMIT 1",
                [*params, batch_size],
            )
            row = cursor.fetchone()
        if row is None:
            return
        after = row


def _prune_scope(
    cutoff, of_logs: Q, of_deliveries: Q, of_events: Q, result: PruneResult, batch_size, dry_run, progress
):
    logs = WebhookLog.objects.filter(of_logs, created_at__lt=cutoff)
    deliveries = Delivery.objects.filter(of_deliveries).filter(_finished_before(cutoff))
    any_delivery = Delivery.objects.filter(event=OuterRef("pk"))
    result.orphans_kept += Event.objects.filter(of_events, created_at__gte=cutoff).exclude(Exists(any_delivery)).count()
    if dry_run:
        kept_delivery = any_delivery.exclude(_finished_before(cutoff))
        would_be_orphans = Event.objects.filter(of_events, created_at__lt=cutoff).exclude(Exists(kept_delivery))
        result.logs += logs.count()  # rows of partitions that would be dropped included
        result.deliveries += deliveries.count()
        result.events += would_be_orphans.count()
        return
    while True:
        ids = list(logs.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            batch = logs.filter(pk__in=ids)
            result.logs += batch._raw_delete(batch.db)  # nothing refers to logs: no collector
        if progress:
            progress("logs", result.logs)
    result.deliveries += _prune_finished_deliveries(cutoff, of_deliveries, batch_size, progress, result.deliveries)
    result.events += _prune_orphan_events(cutoff, of_events, batch_size, progress, result.events)


def _prune_finished_deliveries(cutoff, scope: Q, batch_size: int, progress, before: int) -> int:
    """Finished deliveries older than the cutoff, along the `delivery_finished_at` index
    (partial: succeeded and failed rows), a keyset window of `batch_size` at a time: each
    batch starts after the last row seen instead of rescanning the index's dead entries."""
    deleted_total = 0
    finished = [Delivery.State.SUCCEEDED, Delivery.State.FAILED]
    old = Delivery.objects.filter(scope, state__in=finished, finished_at__lt=cutoff)
    for rows in _keyset_windows(old, "finished_at", batch_size):
        ids = [pk for _, pk in rows]
        with transaction.atomic():
            # Raw deletes, no collector (it would SELECT the batch's logs first). The
            # deliveries first, filtered again: a row re-armed (a replay, recover) since
            # it was listed stays, and one deleted here is locked until the commit, so
            # no writer re-arms it nor logs an attempt of it meanwhile (the engine and
            # replays write a delivery before its logs). Then the logs of exactly the
            # deliveries gone, by their `delivery_id` index: a log newer than the
            # cutoff of a delivery finished before it (clock skew, a replay's attempt)
            # goes with it, as the collector's CASCADE did; a kept delivery's stay.
            batch = Delivery.objects.filter(_finished_before(cutoff), pk__in=ids)
            deleted = batch._raw_delete(batch.db)
            kept = Delivery.objects.filter(pk__in=ids).values("pk")
            gone = WebhookLog.objects.filter(delivery_id__in=ids).exclude(delivery_id__in=kept)
            gone._raw_delete(gone.db)
        deleted_total += deleted
        if progress and deleted:
            progress("deliveries", before + deleted_total)
    return deleted_total


def _keyset_windows(rows: QuerySet, column: str, batch_size: int) -> Iterator[list[tuple[Any, Any]]]:
    """`rows`' (`column`, pk) in order, `batch_size` at a time, each window starting after the
    last row of the one before (keyset), so no batch rescans what earlier ones passed."""
    ordered = rows.order_by(column, "pk")
    after = None
    while True:
        window = ordered
        if after is not None:
            window = window.filter(Q(**{f"{column}__gt": after[0]}) | Q(**{column: after[0], "pk__gt": after[1]}))
        batch = list(window.values_list(column, "pk")[:batch_size])
        if not batch:
            return
        after = batch[-1]
        yield batch


def _prune_orphan_events(cutoff, scope: Q, batch_size: int, progress, before: int) -> int:
    """Walk the events older than the cutoff along the `created_at` index, a window of
    `batch_size` at a time (keyset: after the last (created_at, id) seen), and delete those
    of the window with NOT EXISTS a delivery. Each batch reads one index window and probes
    the deliveries' `event_id` index per row: the cost is linear in the events walked, never
    an anti-join over the whole tables, and events kept (a delivery still pending) are
    passed once, not re-read by every batch."""
    deleted_total = 0
    old = Event.objects.filter(scope, created_at__lt=cutoff)
    for rows in _keyset_windows(old, "created_at", batch_size):
        # One statement: DELETE ... WHERE id IN (window) AND NOT EXISTS (a delivery), raw
        # (no collector: nothing else refers to an event, and NOT EXISTS rules out the
        # deliveries), so the batch costs one index window plus one probe per row.
        batch = Event.objects.filter(pk__in=[pk for _, pk in rows], created_at__lt=cutoff).exclude(
            Exists(Delivery.objects.filter(event=OuterRef("pk")))
        )
        with transaction.atomic():
            deleted = batch._raw_delete(batch.db)
        if deleted:
            deleted_total += deleted
            if progress:
                progress("events", before + deleted_total)
    return deleted_total
