"""Delivery flow: which due deliveries a claim may take (docs/WEBHOOKS.md "Flow", docs/QUEUE.md).

`claim_ready` leases due deliveries like `store.claim_due`, with four rules on top, all
decided in the claim's transaction from shared state (the database), so they hold across
every worker and cluster:

- **Lanes**: first attempts are claimed before retries (two queries, first attempts
  first), and the loop lets retries fill at most half of its send slots.
- **Ordered webhooks** (`ordered`): only the webhook's oldest pending delivery (the head)
  is eligible; the next becomes eligible once the head succeeded or finally failed.
- **Concurrency** (`max_concurrency`, and the slow lane): the unexpired leases of a
  webhook are its requests in flight. A webhook at its cap is left out of the claim; the
  rows of capped webhooks are locked (`SELECT ... FOR UPDATE`) and their leases counted
  again before taking, so two claimers cannot both take the last slot. A webhook whose
  latest attempt failed, or with a request in flight for over `SLOW_AFTER`, is *slow*: it
  gets at most `SLOW_CONCURRENCY` requests in flight, so a receiver that never answers
  holds a few send slots, never all of them.
- **Rate** (`rate_limit`): a GCRA bucket (integrations/ratelimit.py's arithmetic) kept in
  the webhook row (`rate_tat_us`), taken under the same row lock, burst 1: takes are
  spaced `1 / rate_limit` s apart, so no window of W seconds holds more than
  `W * rate_limit + 1` of them. A claim rolled back takes no token.

Deliveries left out stay due, untouched: no lease, no attempt counted.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.db.models.functions import Now
from django.utils import timezone

from common.db import AnyOf, PreparedQuery, plan_with_indexes
from integrations.ratelimit import US, Bucket, _allow_and_advance

from .. import app_settings
from ..models import Delivery, Webhook
from .store import SECRET_FIELDS, _due, lease

#: requests in flight at most for a slow webhook (latest attempt failed, or one in flight
#: for over SLOW_AFTER); a lower `max_concurrency` wins
SLOW_CONCURRENCY = 2
SLOW_AFTER = timedelta(seconds=1)

# This process's knowledge of rate buckets that are empty: webhook id -> monotonic time of
# the next token. Only an optimisation (the claim leaves those webhooks out instead of
# locking their rows for nothing); the bucket in the row decides.
_rate_blocked: dict[uuid.UUID, float] = {}


#: the claim's queries (each lane's, the leases in flight, the webhooks), built once per
#: process: filtering, slicing or `.all()` copy a queryset and never change it, and building
#: these costs a claim more CPU than running them. On PostgreSQL each is compiled once
#: (`PreparedQuery`): one statement text per query whatever the claim, prepared once per
#: connection, so it is not planned again against every daily partition of the deliveries.
_lanes: dict = {}


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _compiled(key, build) -> PreparedQuery:
    query = _lanes.get(key)
    if query is None:
        query = _lanes[key] = PreparedQuery(build())
    return query


@dataclass
class Claim:
    deliveries: list[Delivery] = field(default_factory=list)
    #: seconds until a rate-limited webhook left out of this claim has its next token
    rate_wait: float | None = None
    #: a lane came back full: more may be due
    more: bool = False


def _is_failing(last_failure_at: datetime | None, last_success_at: datetime | None) -> bool:
    return last_failure_at is not None and (last_success_at is None or last_failure_at > last_success_at)


def _cap(max_concurrency: int | None, slow: bool) -> float:
    cap: float = max_concurrency if max_concurrency is not None else float("inf")
    return min(cap, SLOW_CONCURRENCY) if slow else cap


def _in_flight(webhook_ids: list | None = None) -> dict:
    """Unexpired leases per webhook: {webhook id: (count, earliest lease expiry)}."""
    leased = Delivery.objects.filter(
        state=Delivery.State.PENDING, lease_token__isnull=False, lease_expires_at__gt=Now()
    )
    if webhook_ids is not None and _postgres():

        def build():
            return (
                leased.filter(AnyOf("webhook_id", "webhooks"))
                .values_list("webhook_id")
                .annotate(n=Count("pk"), oldest=Min("lease_expires_at"))
                .order_by()
            )

        rows = _compiled("in_flight", build).rows(webhooks=list(webhook_ids))
        return {pk: (count, oldest) for pk, count, oldest in rows}
    if webhook_ids is not None:
        leased = leased.filter(webhook_id__in=webhook_ids)
    grouped = leased.values_list("webhook_id").annotate(n=Count("pk"), oldest=Min("lease_expires_at")).order_by()
    return {pk: (count, oldest) for pk, count, oldest in grouped}


def _slow_by_age(oldest_expiry: datetime | None, now: datetime) -> bool:
    """A lease taken more than SLOW_AFTER ago (leases last `lease_seconds`) is a slow request."""
    if oldest_expiry is None:
        return False
    claimed_at = oldest_expiry - timedelta(seconds=app_settings.lease_seconds())
    return now - claimed_at > SLOW_AFTER


def _leased() -> list:
    """The unexpired leases per webhook, with the webhook's cap and latest results."""
    queryset = _lanes.get("leased")
    if queryset is None:  # built once per process, like the lanes
        leased = Delivery.objects.filter(
            state=Delivery.State.PENDING, lease_token__isnull=False, lease_expires_at__gt=Now()
        )
        queryset = _lanes["leased"] = (
            leased.values_list(
                "webhook_id", "webhook__max_concurrency", "webhook__last_failure_at", "webhook__last_success_at"
            )
            .annotate(n=Count("pk"), oldest=Min("lease_expires_at"))
            .order_by()
        )
    if _postgres():
        return _compiled("leased_compiled", lambda: queryset).rows()
    return list(queryset.all())


def _blocked(now: datetime) -> tuple[set, float | None, dict]:
    """Webhooks at their cap (approximate: no lock; `_admit` checks again under one), the
    seconds until the first of the rate-limited ones left out has a token, and the leases in
    flight per webhook (`_in_flight`), read with their webhooks' caps in one query."""
    flying: dict = {}
    blocked: set = set()
    for pk, max_concurrency, failed_at, succeeded_at, count, oldest in _leased():
        flying[pk] = (count, oldest)
        slow = _is_failing(failed_at, succeeded_at) or _slow_by_age(oldest, now)
        if count >= _cap(max_concurrency, slow):
            blocked.add(pk)
    clock = time.monotonic()
    rate_wait: float | None = None
    for pk, until in list(_rate_blocked.items()):
        if until <= clock:
            del _rate_blocked[pk]
        else:
            blocked.add(pk)
            rate_wait = until - clock if rate_wait is None else min(rate_wait, until - clock)
    return blocked, rate_wait, flying


def _eligible():
    older_pending = Delivery.objects.filter(webhook_id=OuterRef("webhook_id"), state=Delivery.State.PENDING).filter(
        Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk"))
    )
    return Delivery.objects.filter(_due(), next_attempt_at__lte=Now()).filter(
        Q(webhook__ordered=False) | ~Exists(older_pending)
    )


def _locked_query(queryset):
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset.select_related("event")


def _lane(retries: bool, blocked: set):
    """The lane's eligible deliveries, oldest due first, locked, without the blocked webhooks'."""
    queryset = _lanes.get(retries)
    if queryset is None:
        attempts = Q(attempts__gt=0) if retries else Q(attempts=0)
        queryset = _lanes[retries] = _locked_query(_eligible().filter(attempts).order_by("next_attempt_at"))
    return queryset.exclude(webhook_id__in=blocked) if blocked else queryset


def _lane_rows(retries: bool, blocked: set, limit: int) -> list[Delivery]:
    if not _postgres():
        return list(_lane(retries, blocked)[:limit])
    # The states and attempts stay literals in the SQL: the lanes' partial indexes
    # (`delivery_due_first`, `delivery_due`) are only usable when the text proves them.
    key = ("compiled", retries)
    query = _lanes.get(key)
    if query is None:
        lane = _lane(retries, set())
        query = _lanes[key] = PreparedQuery(lane.filter(AnyOf("webhook_id", "blocked", negated=True)), limit=True)
    return query.rows(blocked=list(blocked), limit=limit)


def _with_webhooks(deliveries: list[Delivery]) -> list[Delivery]:
    """Each delivery with its webhook, one instance per webhook read by one query: a claim
    of many deliveries of few webhooks builds (and decrypts the headers of) each webhook
    once. Secrets and subscriber credentials are left out: `store.signing_keys` and
    webhooks/engine/subscriber_auth.py read them per batch, so one that cannot be
    decrypted does not make the claim itself fail."""
    if not deliveries:
        return deliveries
    readable = _lanes.get("webhooks")
    if readable is None:
        readable = _lanes["webhooks"] = Webhook.objects.defer(*SECRET_FIELDS, "auth", "client_certificate")
    ids = {d.webhook_id for d in deliveries}
    if _postgres():
        found = _compiled("webhooks_compiled", lambda: readable.filter(AnyOf("pk", "ids"))).rows(ids=list(ids))
    else:
        found = list(readable.filter(pk__in=ids))
    webhooks = {w.pk: w for w in found}
    for delivery in deliveries:
        # Deleting a webhook deletes its deliveries first, which waits for this claim's lock.
        delivery.webhook = webhooks[delivery.webhook_id]
    return deliveries


def _candidates(limit: int, retry_limit: int, blocked: set) -> tuple[list[Delivery], bool]:
    """First attempts, then retries; and whether a lane came back full."""
    first = _lane_rows(False, blocked, limit)
    room = min(limit - len(first), retry_limit)
    if room <= 0:
        return _with_webhooks(first), len(first) >= limit or retry_limit <= 0
    retries = _lane_rows(True, blocked, room)
    return _with_webhooks(first + retries), len(retries) >= room


def _admit(candidates: list[Delivery], now: datetime, flying: dict) -> tuple[list[Delivery], float | None, bool]:
    """The candidates within their webhook's concurrency cap and rate bucket; the seconds
    until a rate-limited one has a token; whether a concurrency cap held one back.

    `flying` is `_blocked`'s count of leases per webhook, read in this transaction without
    a lock: enough for the slow lane of webhooks without limits (an estimate either way);
    those with a limit have their rows locked and their leases counted again under it."""
    by_webhook: dict = defaultdict(list)
    for delivery in candidates:
        by_webhook[delivery.webhook_id].append(delivery)
    limited = sorted(
        pk
        for pk, group in by_webhook.items()
        if group[0].webhook.max_concurrency is not None or group[0].webhook.rate_limit is not None
    )
    tats: dict = {}
    if limited:
        # One global order (by pk), like the recorder's: concurrent claims cannot deadlock.
        if _postgres():
            locked = _compiled(
                "limited",
                lambda: (
                    Webhook.objects.select_for_update()
                    .filter(AnyOf("pk", "ids"))
                    .order_by("pk")
                    .values_list("pk", "rate_tat_us")
                ),
            )
            tats = dict(locked.rows(ids=limited))
        else:
            rows = Webhook.objects.select_for_update().filter(pk__in=limited).order_by("pk")
            tats = dict(rows.values_list("pk", "rate_tat_us"))
        counted = _in_flight(limited)
        flying = {**flying, **{pk: counted.get(pk, (0, None)) for pk in limited}}
    taken: list[Delivery] = []
    rate_wait: float | None = None
    held_back = False
    now_us = time.time_ns() // 1000
    for pk, group in by_webhook.items():
        webhook = group[0].webhook
        count, oldest = flying.get(pk, (0, None))
        slow = _is_failing(webhook.last_failure_at, webhook.last_success_at) or _slow_by_age(oldest, now)
        room = _cap(webhook.max_concurrency, slow) - count
        fits = max(0, int(min(room, len(group))))
        held_back = held_back or fits < len(group)
        group = group[:fits]
        if webhook.rate_limit is not None and group and pk in tats:
            bucket = Bucket("webhook", interval_us=max(1, round(US / webhook.rate_limit)), tolerance_us=0)
            tat, allowed = tats[pk], 0
            for _ in group:
                allow, [new_tat] = _allow_and_advance([tat], [bucket], now_us)
                if allow > now_us:
                    wait = (allow - now_us) / US
                    rate_wait = wait if rate_wait is None else min(rate_wait, wait)
                    _rate_blocked[pk] = time.monotonic() + wait
                    break
                tat, allowed = new_tat, allowed + 1
            if allowed:
                Webhook.objects.filter(pk=pk).update(rate_tat_us=tat)
            group = group[:allowed]
        taken.extend(group)
    return taken, rate_wait, held_back


def claim_ready(*, limit: int, retry_limit: int | None = None) -> Claim:
    """Lease up to `limit` due deliveries (at most `retry_limit` of them retries) that the
    flow rules allow now; see the module docstring."""
    retry_limit = limit if retry_limit is None else retry_limit
    now = timezone.now()
    with transaction.atomic():
        plan_with_indexes()  # every statement of a claim is an index lookup (common.db)
        blocked, blocked_wait, flying = _blocked(now)
        candidates, more = _candidates(limit, retry_limit, blocked)
        if not candidates:
            return Claim(rate_wait=blocked_wait, more=more)
        deliveries, rate_wait, held_back = _admit(candidates, now, flying)
        more = more or held_back  # the loop comes back for them when a slot frees
        if blocked_wait is not None:
            rate_wait = blocked_wait if rate_wait is None else min(rate_wait, blocked_wait)
        if not deliveries:
            return Claim(rate_wait=rate_wait, more=more)
        lease(deliveries, now=now)
    return Claim(deliveries=deliveries, rate_wait=rate_wait, more=more)
