"""The store: the only database operations on delivery state, each a named function.

- `claim_due`: lease a batch of due deliveries atomically (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL; SQLite's IMMEDIATE transactions serialize claims). The lease outlives the
  batch's sends; a worker that dies mid-send leaves it to expire, and the delivery is then
  claimed again and resent with the same `webhook-id`.
- `record_batch`: write a batch's logs, delivery states (`delivered_at` on success), webhook
  counters and hourly rollups (webhooks/rollups.py) in a few bulk statements, guarded by
  the lease token, so a worker whose lease was taken over cannot overwrite newer state;
  and, in the same transaction, the operational events those writes call for
  (`webhook.delivery.exhausted`, `webhook.disabled`), emitted only by the writer whose
  guarded UPDATE made the change.
- `signing_keys`, `due_count`, `next_due_after`: the reads the engine needs.

Webhook counters only ever move with `F()` expressions and conditional UPDATEs: the API
and the admin write other fields of the same rows at the same time.

On PostgreSQL the engine's hot statements go through `common.db.prepared_cursor`: each has
one text whatever the batch (a set of ids is one array parameter), so it is prepared once
per connection and PostgreSQL keeps a generic plan instead of planning every execution
against each daily partition of the deliveries and logs (webhooks/partitions.py).
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from common.db import AnyOf, PreparedQuery, plan_with_indexes, prepared_cursor

from .. import app_settings, rollups
from ..models import Delivery, Webhook, WebhookLog
from ..signing import secret_key_bytes
from .policy import GONE_REASON, BatchPlan, CounterChange, Outcome, counter_change, threshold_reason

logger = logging.getLogger(__name__)

SECRET_FIELDS = ("secret", "previous_secret", "previous_secret_expires_at")


# --- reads --------------------------------------------------------------------------------


def _due() -> Q:
    return Q(state=Delivery.State.PENDING) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now()))


def due_count() -> int:
    return Delivery.objects.filter(_due(), next_attempt_at__lte=Now()).count()


def next_due_after(moment: datetime) -> datetime | None:
    return (
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__gt=moment)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def _keys_of(secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime) -> list[bytes]:
    keys = [secret_key_bytes(secret)]
    if previous_expires_at and previous_expires_at > now and previous:
        keys.append(secret_key_bytes(previous))
    return keys


#: the engine's compiled queries (`PreparedQuery`), built once per process
_compiled: dict[str, PreparedQuery] = {}


def _secrets(webhook_ids: set[uuid.UUID]) -> list:
    if connection.vendor != "postgresql":
        return list(Webhook.objects.filter(pk__in=webhook_ids).values_list("pk", *SECRET_FIELDS))
    query = _compiled.get("secrets")
    if query is None:
        query = _compiled["secrets"] = PreparedQuery(
            Webhook.objects.filter(AnyOf("pk", "ids")).values_list("pk", *SECRET_FIELDS)
        )
    return query.rows(ids=list(webhook_ids))


def signing_keys(webhook_ids: set[uuid.UUID], *, now: datetime) -> dict[uuid.UUID, list[bytes] | None]:
    """Each webhook's signing keys in one query; None for a secret that cannot be decrypted
    (e.g. a Fernet key dropped before `reencrypt_credentials`), which then fails only its
    own deliveries instead of every batch it is part of."""
    try:
        return {pk: _keys_of(secret, previous, until, now) for pk, secret, previous, until in _secrets(webhook_ids)}
    except InvalidToken:
        rows = Webhook.objects.filter(pk__in=webhook_ids).values_list("pk", *SECRET_FIELDS)
        keys: dict[uuid.UUID, list[bytes] | None] = {}
        for webhook_id in webhook_ids:
            try:
                one = rows.filter(pk=webhook_id)
                keys.update({pk: _keys_of(secret, previous, until, now) for pk, secret, previous, until in one})
            except InvalidToken:
                logger.error("The signing secret of webhook %s cannot be decrypted with FERNET_KEYS.", webhook_id)
                keys[webhook_id] = None
        return keys


# --- claiming -----------------------------------------------------------------------------


def claim_due(*, limit: int, delivery_ids: list | None = None) -> list[Delivery]:
    """Atomically lease up to `limit` due deliveries (or exactly `delivery_ids`)."""
    now = timezone.now()
    with transaction.atomic():
        plan_with_indexes()  # see common.db
        # Due-ness by the database's clock, the one the triggering web process wrote with
        # on PostgreSQL: a worker whose clock lags must not find a fresh delivery "not due".
        queryset = Delivery.objects.filter(_due())
        if delivery_ids is not None:
            queryset = queryset.filter(pk__in=delivery_ids)
        else:
            queryset = queryset.filter(next_attempt_at__lte=Now()).order_by("next_attempt_at")
        if connection.features.has_select_for_update_skip_locked:
            queryset = queryset.select_for_update(skip_locked=True, of=("self",))
        # Secrets are loaded per batch by `signing_keys`, so one that cannot be decrypted
        # does not make the claim itself fail.
        # So are subscriber credentials, by webhooks/engine/subscriber_auth.py.
        secrets = [f"webhook__{name}" for name in (*SECRET_FIELDS, "auth", "client_certificate")]
        deliveries = list(queryset.select_related("event", "webhook").defer(*secrets)[:limit])
        if not deliveries:
            return []
        lease(deliveries, now=now)
    return deliveries


def lease(deliveries: list[Delivery], *, now: datetime) -> None:
    """Lease the claimed (locked) `deliveries` to this worker: a new token, an expiry, and
    one more attempt, in the database and on the instances."""
    token = uuid.uuid4()
    expires = now + timedelta(seconds=app_settings.lease_seconds())
    ids = [d.pk for d in deliveries]
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute(_lease_sql(), [token, expires, ids])
    else:
        leased = Delivery.objects.filter(pk__in=ids)
        leased.update(lease_token=token, lease_expires_at=expires, attempts=F("attempts") + 1)
    for delivery in deliveries:
        delivery.lease_token = token
        delivery.lease_expires_at = expires
        delivery.attempts += 1


@functools.cache
def _lease_sql() -> str:
    """`lease`'s UPDATE on PostgreSQL, built once (the names are the model's)."""
    column = {f.name: connection.ops.quote_name(f.column) for f in Delivery._meta.concrete_fields}
    return (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)} SET "  # noqa: S608 (the model's names)
        f"{column['lease_token']} = %s::uuid, {column['lease_expires_at']} = %s::timestamptz, "
        f"{column['attempts']} = {column['attempts']} + 1 WHERE {column['id']} = ANY(%s::uuid[])"
    )


# --- recording ----------------------------------------------------------------------------


#: WebhookLog fields in the order `_log_values` gives them
_LOG_FIELDS = (
    "id",
    "organization",
    "webhook",
    "delivery",
    "event_type",
    "attempt",
    "request_url",
    "custom_headers",
    "response_status",
    "response_body",
    "duration_ms",
    "error",
    "success",
    "created_at",
)


def _log_values(outcome: Outcome) -> tuple:
    delivery = outcome.delivery
    return (
        uuid.uuid4(),
        delivery.organization_id,
        delivery.webhook_id,
        delivery.pk,
        delivery.event.type,
        delivery.attempts,
        delivery.webhook.url,
        WebhookLog.custom_only(outcome.request_headers),
        outcome.status,
        outcome.body_excerpt,
        round(outcome.duration_ms, 3),
        outcome.error[:500],
        outcome.success,
        outcome.started_at,
    )


def _insert_logs(outcomes: list[Outcome]) -> None:
    """One INSERT of the attempts' logs: what `bulk_create` writes, without building a model
    instance per row. On PostgreSQL the rows go as one array per column (`unnest`): one
    statement text whatever the batch size, prepared once per connection."""
    if not outcomes:
        return
    concrete = {f.name: f for f in WebhookLog._meta.concrete_fields}
    fields = [concrete[name] for name in _LOG_FIELDS]
    quote = connection.ops.quote_name
    table, columns = quote(WebhookLog._meta.db_table), ", ".join(quote(f.column) for f in fields)
    rows = [_log_values(o) for o in outcomes]
    with prepared_cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = [list(column) for column in zip(*rows, strict=True)]
            headers = _LOG_FIELDS.index("custom_headers")
            arrays[headers] = [json.dumps(value) for value in arrays[headers]]
            casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields).replace("jsonb[]", "text[]")
            names = ", ".join(f"c{i}" for i in range(len(fields)))
            selected = ", ".join(f"c{i}::jsonb" if i == headers else f"c{i}" for i in range(len(fields)))
            # The names are the model's, the values parameters.
            sql = f"INSERT INTO {table} ({columns}) SELECT {selected} FROM unnest({casts}) AS v({names})"  # noqa: S608
            cursor.execute(sql, arrays)
            return
        prepared = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)] for row in rows]
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        size = connection.ops.bulk_batch_size(fields, prepared) or len(prepared)
        for start in range(0, len(prepared), size):
            chunk = prepared[start : start + size]
            sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(chunk))}"  # noqa: S608
            cursor.execute(sql, [value for row in chunk for value in row])


def _finish_deliveries(token: uuid.UUID, plan: BatchPlan, now: datetime) -> set:
    """Move the batch's deliveries this worker still owns (lease token) to their next state;
    returns their ids. PostgreSQL: one `UPDATE ... FROM (VALUES ...) RETURNING` for every
    next state at once (it locks the rows it changes); SQLite (claims serialized by its
    IMMEDIATE transactions): the owned rows, then one UPDATE per next state."""
    if connection.vendor == "postgresql":
        return _finish_deliveries_at_once(token, plan, now)
    owned = set(
        Delivery.objects.select_for_update()
        .filter(pk__in=plan.delivery_ids(), lease_token=token)
        .values_list("pk", flat=True)
    )
    for state, ids in plan.groups.items():
        mine = [pk for pk in ids if pk in owned]
        if mine:
            Delivery.objects.filter(pk__in=mine, lease_token=token).update(
                state=state.state,
                next_attempt_at=state.next_attempt_at,
                lease_token=None,
                lease_expires_at=None,
                last_error=state.error,
                finished_at=None if state.state == Delivery.State.PENDING else now,
                # The first success only: a replay that succeeds again keeps it.
                **({"delivered_at": Coalesce("delivered_at", now)} if state.state == Delivery.State.SUCCEEDED else {}),
            )
    return owned


def _finish_deliveries_at_once(token: uuid.UUID, plan: BatchPlan, now: datetime) -> set:
    rows = [(pk, state.state, state.next_attempt_at, state.error) for state, ids in plan.groups.items() for pk in ids]
    if not rows:
        return set()
    column = {f.name: connection.ops.quote_name(f.column) for f in Delivery._meta.concrete_fields}
    # The names are the model's, the values parameters (one array per column: one text,
    # prepared once per connection). `delivered_at`: the first success only (a replay
    # that succeeds again keeps it).
    sql = (
        f"UPDATE {connection.ops.quote_name(Delivery._meta.db_table)} AS d SET "  # noqa: S608
        f"{column['state']} = v.state, {column['next_attempt_at']} = v.next_attempt_at, "
        f"{column['lease_token']} = NULL, {column['lease_expires_at']} = NULL, {column['last_error']} = v.last_error, "
        f"{column['finished_at']} = CASE WHEN v.state = %s THEN NULL ELSE %s::timestamptz END, "
        f"{column['delivered_at']} = CASE WHEN v.state = %s THEN COALESCE(d.{column['delivered_at']}, %s::timestamptz) "
        f"ELSE d.{column['delivered_at']} END "
        "FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[], %s::text[]) "
        "AS v(id, state, next_attempt_at, last_error) "
        f"WHERE d.{column['id']} = v.id AND d.{column['lease_token']} = %s::uuid RETURNING d.{column['id']}"
    )
    ids, states, next_attempts, errors = (list(column) for column in zip(*rows, strict=True))
    params: list[Any] = [Delivery.State.PENDING.value, now, Delivery.State.SUCCEEDED.value, now]
    params += [ids, states, next_attempts, errors, token]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return {pk for (pk,) in cursor.fetchall()}


def _write(token: uuid.UUID, plan: BatchPlan, now: datetime) -> set:
    with transaction.atomic():
        # Results need not wait for the WAL flush: if the server crashed before flushing
        # them, the delivery keeps its (durable) lease and is resent with the same
        # webhook-id once it expires; at-least-once holds. Claims stay synchronous:
        # losing one could let two workers send at once. Index plans: see common.db.
        plan_with_indexes(synchronous_commit=False)
        # Only rows this worker still owns: a lease taken over by another worker, or a
        # delivery deleted with its webhook meanwhile, gets no log and moves no counter.
        owned = _finish_deliveries(token, plan, now)
        _insert_logs([o for o in plan.outcomes if o.delivery.pk in owned])
        # Webhook rows are locked in one global order, so that concurrent batches touching
        # the same webhooks cannot deadlock.
        disabled = []
        for webhook_id in sorted(plan.per_webhook):
            outcomes = [o for o in plan.per_webhook[webhook_id] if o.delivery.pk in owned]
            if outcomes and move_webhook_counters(webhook_id, counter_change(outcomes), now):
                disabled.append(webhook_id)
        # Hourly rollups (the stats endpoint's source) move in the same transaction.
        rollups.add_outcomes((o for o in plan.outcomes if o.delivery.pk in owned), now=now)
        # `owned` rows are locked (SQLite: the IMMEDIATE transaction), so the UPDATEs above
        # changed exactly them: only this worker announces their final state.
        exhausted = [e for pk, e in plan.exhausted.items() if pk in owned]
        if exhausted or disabled:
            _announce(exhausted, disabled)
    return owned


def _announce(exhausted: list, disabled: list[uuid.UUID]) -> None:
    # Imported here: the services package imports the engine (test, replay send through it).
    from ..services.operational import emit_deliveries_exhausted, emit_webhook_disabled

    emit_deliveries_exhausted(exhausted)
    for webhook_id in disabled:
        emit_webhook_disabled(webhook_id=webhook_id, disabled_by="engine")


def _write_while_leased(token: uuid.UUID, plan: BatchPlan, now: datetime, lease_expires_at: datetime) -> set:
    """Keep trying (reconnecting) while the lease holds: a database restart in the middle
    of a batch must not turn into a resend of everything the batch already delivered."""
    pause = 0.1
    while True:
        try:
            return _write(token, plan, now)
        except (OperationalError, InterfaceError):
            if timezone.now() + timedelta(seconds=pause + 1) >= lease_expires_at:
                raise
            logger.warning("Recording a delivery batch failed; trying again.", exc_info=True)
            connection.close()
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def record_batch(token: uuid.UUID, plan: BatchPlan, *, now: datetime, lease_expires_at: datetime) -> set:
    """Write a planned batch: deliveries with the same next state are updated by one
    UPDATE each, guarded by the lease token. If the batch cannot be written for a reason
    other than the connection, each delivery is written on its own, so that one bad row
    cannot make the whole batch be sent again. Returns the ids of the deliveries recorded
    (those whose lease this worker still held)."""
    try:
        return _write_while_leased(token, plan, now, lease_expires_at)
    except (IntegrityError, DataError):
        logger.exception("Recording a delivery batch failed; recording its deliveries one by one.")
        recorded: set = set()
        for single in _one_by_one(plan):
            try:
                recorded |= _write_while_leased(token, single, now, lease_expires_at)
            except (IntegrityError, DataError):
                # Left leased: claimed again (and resent, same webhook-id) when the lease expires.
                logger.exception("Could not record delivery %s.", single.delivery_ids())
        return recorded


def _one_by_one(plan: BatchPlan) -> list[BatchPlan]:
    outcomes = {o.delivery.pk: o for o in plan.outcomes}
    singles = []
    for state, ids in plan.groups.items():
        for pk in ids:
            single = BatchPlan()
            single.groups[state].append(pk)
            if pk in plan.exhausted:
                single.exhausted[pk] = plan.exhausted[pk]
            if pk in outcomes:
                outcome = outcomes[pk]
                single.outcomes.append(outcome)
                single.per_webhook[outcome.delivery.webhook_id].append(outcome)
            singles.append(single)
    return singles


def move_webhook_counters(webhook_id: uuid.UUID, change: CounterChange, now: datetime) -> bool:
    """Counters move with F(); the engine disables only a webhook that is still active.
    Returns whether this call disabled it (its conditional UPDATE changed the row).

    Counters and `last_*_at` are statistics with times of their own: they leave `updated_at`
    alone. Disabling changes the webhook's state, so it moves `updated_at` too."""
    if connection.vendor == "postgresql":
        _move_counters_prepared(webhook_id, change, now)
    else:
        _move_counters(webhook_id, change, now)
    return change.may_disable and _disable_if_due(webhook_id, change, now)


def _move_counters(webhook_id: uuid.UUID, change: CounterChange, now: datetime) -> None:
    updates: dict = {
        "success_count": F("success_count") + change.successes,
        "failure_count": F("failure_count") + change.failures,
        "last_triggered_at": now,
    }
    if change.consecutive_set is not None:
        updates["consecutive_failures"] = change.consecutive_set
    elif change.consecutive_add:
        updates["consecutive_failures"] = F("consecutive_failures") + change.consecutive_add
    if change.successes:
        updates["last_success_at"] = now
    if change.failures:
        updates["last_failure_at"] = now
    Webhook.objects.filter(pk=webhook_id).update(**updates)


def _disable_if_due(webhook_id: uuid.UUID, change: CounterChange, now: datetime) -> bool:
    active = Webhook.objects.filter(pk=webhook_id, is_active=True)
    if change.gone:
        return active.update(is_active=False, disabled_at=now, disabled_reason=GONE_REASON, updated_at=Now()) > 0
    threshold = app_settings.disable_after_failures()
    disabled = active.filter(consecutive_failures__gte=threshold).update(
        is_active=False, disabled_at=now, disabled_reason=threshold_reason(threshold), updated_at=Now()
    )
    return disabled > 0


@functools.cache
def _counters_sql() -> str:
    """`_move_counters`' UPDATE, one text for every change (the names are the model's, the
    values parameters): `consecutive_failures` set, or added to; `last_*_at` moved by a
    success or a failure."""
    column = {f.name: connection.ops.quote_name(f.column) for f in Webhook._meta.concrete_fields}
    success, failure, consecutive = column["success_count"], column["failure_count"], column["consecutive_failures"]
    last_success, last_failure = column["last_success_at"], column["last_failure_at"]
    return (
        f"UPDATE {connection.ops.quote_name(Webhook._meta.db_table)} SET "  # noqa: S608
        f"{success} = {success} + %(successes)s::integer, {failure} = {failure} + %(failures)s::integer, "
        f"{column['last_triggered_at']} = %(now)s::timestamptz, "
        f"{consecutive} = COALESCE(%(consecutive_set)s::integer, {consecutive} + %(consecutive_add)s::integer), "
        f"{last_success} = CASE WHEN %(successes)s::integer > 0 THEN %(now)s::timestamptz ELSE {last_success} END, "
        f"{last_failure} = CASE WHEN %(failures)s::integer > 0 THEN %(now)s::timestamptz ELSE {last_failure} END "
        f"WHERE {column['id']} = %(webhook)s::uuid"
    )


def _move_counters_prepared(webhook_id: uuid.UUID, change: CounterChange, now: datetime) -> None:
    """`move_webhook_counters`' UPDATE as one prepared statement for every change."""
    params = {
        "successes": change.successes,
        "failures": change.failures,
        "now": now,
        "consecutive_set": change.consecutive_set,
        "consecutive_add": change.consecutive_add,
        "webhook": webhook_id,
    }
    with prepared_cursor() as cursor:
        cursor.execute(_counters_sql(), params)
