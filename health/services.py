"""Writes of the health app: claiming integrations, recording checks, status rules, pruning.

A run claims due integrations in batches (an atomic lease on `HealthState`), checks a
batch concurrently in a thread pool, then records the whole batch in a few bulk queries.
Status rules (README "Health monitoring"): `HEALTH_UNHEALTHY_THRESHOLD` consecutive
unhealthy checks put an active integration into `error` (event `integration.unhealthy`);
the next check that is not unhealthy makes it `active` again (event `integration.recovered`).
An integration never connected (`checks.not_connected_reason`) is not checked: its health
is `unknown` ("not connected"), and runs report it apart.

Connection issues (`integrations/issues.py`): each result's issue and the kinds it looked
for are recorded with the batch (`issues_observe`: one query for the batch's active
issues, writes only for what changes). Health status and open issues never contradict
each other: a check that would be `healthy` is recorded `degraded` while the integration
has an open issue, saying which; a healthy check of an integration marked as needing
re-authorization (its token still works) shows `reauthorization_required`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.db.models import Case, CharField, DateTimeField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Now
from django.utils import timezone

from common import metrics
from common.exceptions import ConflictError
from integrations.detectors import reauthorization_details, reauthorization_message
from integrations.issues import ACTIVE, Kind, Observation, Seen, issues_observe
from integrations.models import ConnectionIssue, Integration
from organizations.models import Organization
from webhooks.services import trigger_event

from . import app_settings
from .checks import (
    DEGRADED,
    HEALTHY,
    PENDING_REASON,
    UNHEALTHY,
    CheckResult,
    check_integration,
    not_connected_reason,
)
from .models import ClusterHeartbeat, HealthCheck, HealthState

logger = logging.getLogger(__name__)

EVENT_UNHEALTHY = "integration.unhealthy"
EVENT_RECOVERED = "integration.recovered"
MONITORED_STATUSES = (Integration.Status.ACTIVE, Integration.Status.ERROR)


def monitored_integrations() -> QuerySet[Integration]:
    """What the scheduled run checks: active integrations, and those in `error` (to see them
    recover) unless their grant is dead (they need re-authorization, not checks)."""
    return Integration.objects.filter(status__in=MONITORED_STATUSES, needs_reauthorization=False)


# --- claiming ---------------------------------------------------------------------------


def _ensure_states(targets: QuerySet[Integration]) -> None:
    missing = list(targets.filter(health_state__isnull=True).values_list("pk", flat=True))
    if missing:
        HealthState.objects.bulk_create(
            [HealthState(integration_id=pk) for pk in missing], ignore_conflicts=True, batch_size=500
        )


def _due(due_before) -> Q:
    return Q(integration__last_health_check_at__isnull=True) | Q(integration__last_health_check_at__lt=due_before)


def health_claim(*, targets: QuerySet[Integration], due_before, limit: int) -> list[Integration]:
    """Lease up to `limit` due, unleased integrations of `targets`; return them loaded.

    PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` so concurrent claimers take different
    rows without waiting. SQLite: the transaction is IMMEDIATE (settings), so claimers
    queue on the write lock and each sees the leases the previous one wrote.
    """
    now = timezone.now()
    with transaction.atomic():
        candidates = HealthState.objects.filter(integration__in=targets.values("pk")).filter(
            _due(due_before), Q(leased_until__isnull=True) | Q(leased_until__lt=now)
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        ids = list(
            candidates.order_by(F("integration__last_health_check_at").asc(nulls_first=True), "pk").values_list(
                "integration_id", flat=True
            )[:limit]
        )
        if not ids:
            return []
        HealthState.objects.filter(pk__in=ids).update(
            leased_until=now + timedelta(seconds=app_settings.lease_seconds())
        )
    return list(Integration.objects.filter(pk__in=ids).select_related("organization"))


# --- recording --------------------------------------------------------------------------


def _event_payload(integration: Integration, record: HealthCheck, status: str) -> dict:
    return {
        "integration": {"id": str(integration.pk), "name": integration.name, "provider": integration.provider},
        "status": status,
        "health_status": record.status,
        "consecutive_unhealthy": record.consecutive_unhealthy,
        "error": record.error,
        "checked_at": record.checked_at.isoformat(),
    }


def _write_health(records: list[HealthCheck], now, batch_size: int = 500) -> None:
    """Each integration's `health_status` and `last_health_check_at`, one UPDATE per batch.

    A new health status is a change of state, so it moves `updated_at` too; a check that
    finds the status unchanged does not. Compared in the UPDATE itself (SET expressions see
    the row as it was), so a status another writer set meanwhile is compared, not a stale copy.
    """
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        status = Case(*(When(pk=r.integration_id, then=Value(r.status)) for r in batch), output_field=CharField())
        checked = Case(
            *(When(pk=r.integration_id, then=Value(r.checked_at)) for r in batch), output_field=DateTimeField()
        )
        moved = Case(
            *(When(Q(pk=r.integration_id) & ~Q(health_status=r.status), then=Value(now)) for r in batch),
            default=F("updated_at"),
            output_field=DateTimeField(),
        )
        Integration.objects.filter(pk__in=[r.integration_id for r in batch]).update(
            health_status=status, last_health_check_at=checked, updated_at=moved
        )


def _observation(integration: Integration, result: CheckResult) -> Observation:
    detected: dict[str, Seen] = {}
    kind = result.issue_kind
    if kind == Kind.REAUTHORIZATION_REQUIRED:
        message = f"{result.error} An admin of the organization must reconnect it: open the reconnect URL."
        detected[kind] = Seen(message, {**reauthorization_details(integration), **result.issue_details})
    elif kind:
        detected[kind] = Seen(result.error or str(kind), result.issue_details)
    if integration.needs_reauthorization and result.status == HEALTHY:
        # A token that still works does not make a dead grant healthy (the failures that
        # marked it were recorded by the token path when they happened).
        detected[Kind.REAUTHORIZATION_REQUIRED] = Seen(
            reauthorization_message(integration), reauthorization_details(integration)
        )
    return Observation(integration=integration, detected=detected, looked_for=frozenset(result.observed_kinds or ()))


def _with_open_issues(result: CheckResult, issues: list[ConnectionIssue]) -> tuple[str, str]:
    """The status and error to record: never `healthy` while an issue is open."""
    if result.status != HEALTHY or not issues:
        return result.status, result.error
    kinds = ", ".join(sorted({issue.kind for issue in issues}))
    return DEGRADED, f"Healthy answer, but connection issues are open: {kinds}."


@transaction.atomic
def health_record_results(*, results: Iterable[CheckResult]) -> list[HealthCheck]:
    """Record a batch of checks (history, integration health, status rules, connection
    issues) and release their leases, in a constant number of queries plus one or two per
    status change and per connection issue that changes."""
    results = list(results)
    ids = [result.integration_id for result in results]
    threshold = app_settings.unhealthy_threshold()
    now = timezone.now()
    states = {s.pk: s for s in HealthState.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    active_issues = ConnectionIssue.objects.filter(status__in=ACTIVE)
    # Locked in one query (in pk order) before the issue rows: the order every issue
    # writer follows (integrations/issues.py), e.g. a token refresh recording its outcome.
    integrations = {
        i.pk: i
        for i in Integration.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .order_by("pk")
        .only(
            "id", "organization_id", "name", "provider", "auth_type", "status", "needs_reauthorization", "health_status"
        )
        .annotate(has_active_issues=Exists(active_issues.filter(integration_id=OuterRef("pk"))))
    }
    observations = [
        _observation(integrations[result.integration_id], result)
        for result in results
        if result.integration_id in integrations
    ]
    # Nothing seen and nothing to clear: no query at all for the (usual) healthy integration.
    open_issues = issues_observe(
        observations=[o for o in observations if o.detected or o.integration.has_active_issues]  # type: ignore[attr-defined]
    )
    new_states, records, transitions = [], [], []
    observed: list[tuple[str, str, bool]] = []  # (provider, result, status changed), counted after commit
    for result in results:
        integration = integrations.get(result.integration_id)
        if integration is None:  # deleted while being checked
            continue
        state = states.get(integration.pk)
        if state is None:
            state = HealthState(integration_id=integration.pk)
            new_states.append(state)
        unhealthy = result.status == UNHEALTHY
        state.consecutive_unhealthy = state.consecutive_unhealthy + 1 if unhealthy else 0
        state.leased_until = None
        status, error = _with_open_issues(result, open_issues.get(integration.pk, []))
        transition = HealthCheck.Transition.NONE
        if unhealthy and state.consecutive_unhealthy >= threshold:
            if integration.status == Integration.Status.ACTIVE:
                last_error = f"Health check failed {state.consecutive_unhealthy} times in a row: {result.error}"
                changed = Integration.objects.filter(pk=integration.pk, status=Integration.Status.ACTIVE).update(
                    status=Integration.Status.ERROR, last_error=last_error[:2000], last_error_at=now, updated_at=now
                )
                if changed:
                    transition = HealthCheck.Transition.UNHEALTHY
                    state.marked_error = True
        elif not unhealthy and state.marked_error:
            changed = Integration.objects.filter(
                pk=integration.pk, status=Integration.Status.ERROR, needs_reauthorization=False
            ).update(status=Integration.Status.ACTIVE, last_error="", last_error_at=None, updated_at=now)
            if changed:
                transition = HealthCheck.Transition.RECOVERED
            state.marked_error = False  # recovered, or someone else changed the status meanwhile
        record = HealthCheck(
            integration_id=integration.pk,
            status=status,
            response_time_ms=result.response_time_ms,
            http_status=result.http_status,
            error=error,
            consecutive_unhealthy=state.consecutive_unhealthy,
            transition=transition,
            checked_at=result.checked_at,
        )
        records.append(record)
        # The row is locked: its health_status is the one this UPDATE replaces.
        observed.append((integration.provider, status, integration.health_status != status))
        integration.health_status = status
        integration.last_health_check_at = result.checked_at
        if transition:
            transitions.append((integration, record))
    HealthCheck.objects.bulk_create(records, batch_size=500)
    _write_health(records, now)
    transaction.on_commit(lambda: _count_checks(observed))
    if new_states:
        HealthState.objects.bulk_create(new_states, ignore_conflicts=True)
    existing = [s for s in states.values() if s.integration_id in integrations]
    if existing:
        HealthState.objects.bulk_update(
            existing, ["consecutive_unhealthy", "marked_error", "leased_until"], batch_size=500
        )
    if transitions:
        organizations = Organization.objects.in_bulk({i.organization_id for i, _ in transitions})
        for integration, record in transitions:
            if record.transition == HealthCheck.Transition.UNHEALTHY:
                event, status = EVENT_UNHEALTHY, Integration.Status.ERROR
                logger.warning("Integration %s marked error by health checks: %s", integration.pk, record.error)
            else:
                event, status = EVENT_RECOVERED, Integration.Status.ACTIVE
                logger.info("Integration %s recovered", integration.pk)
            try:
                trigger_event(
                    organization=organizations[integration.organization_id],
                    event=event,
                    payload=_event_payload(integration, record, status),
                )
            except ValidationError:
                # A payload the events refuse: the batch it announces must still be recorded.
                logger.exception("Could not emit %s about integration %s.", event, integration.pk)
    return records


def _count_checks(observed: list[tuple[str, str, bool]]) -> None:
    for provider, result, changed in observed:
        metrics.record_health_check(provider=provider, result=result, status_changed=changed)


# --- runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotConnected:
    """An integration a run left out because it was never connected, and why."""

    integration_id: uuid.UUID
    name: str
    reason: str


@dataclass
class RunSummary:
    requested: int = 0
    checks: list[HealthCheck] = field(default_factory=list)
    not_connected: list[NotConnected] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> Counter:
        return Counter(check.status for check in self.checks)

    @property
    def unhealthy(self) -> int:
        return self.counts[UNHEALTHY]

    @property
    def skipped(self) -> int:
        """Requested but neither checked nor set aside as not connected: being checked by another run."""
        return max(self.requested - len(self.checks) - len(self.not_connected), 0)

    def as_dict(self) -> dict:
        return {
            "checked": len(self.checks),
            "not_connected": len(self.not_connected),
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            **self.counts,
        }


def _set_aside(
    integrations: Iterable[Integration], summary: RunSummary | None = None, *, claimed: bool = False
) -> list[NotConnected]:
    """Leave never-connected integrations unchecked: health back to `unknown`, the unhealthy
    count cleared, and the lease released when this run holds it (`claimed`)."""
    aside = []
    for integration in integrations:
        reason = not_connected_reason(integration) or PENDING_REASON
        aside.append(NotConnected(integration.pk, integration.name, reason))
    if aside:
        ids = [item.integration_id for item in aside]
        Integration.objects.filter(pk__in=ids).exclude(health_status=Integration.HealthStatus.UNKNOWN).update(
            health_status=Integration.HealthStatus.UNKNOWN, updated_at=Now()
        )
        release = {"leased_until": None} if claimed else {}
        HealthState.objects.filter(pk__in=ids).update(consecutive_unhealthy=0, **release)
    if summary is not None:
        summary.not_connected.extend(aside)
    return aside


def _check_in_thread(integration: Integration) -> CheckResult:
    try:
        return check_integration(integration)
    finally:
        # A token refresh opens this thread's own connection: do not leak it.
        connections.close_all()


def health_run(
    *,
    integration_ids: Iterable | None = None,
    provider: str | None = None,
    organization: Organization | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Check the selected integrations concurrently and record the results.

    Without `integration_ids` the monitored integrations are selected (see
    `monitored_integrations`); given ids are checked whatever their status. Scheduled
    runs (`force=False`) only check integrations not checked in the last half interval,
    so overlapping runs do not repeat each other's work; `force` checks every selected
    integration once in this run. Integrations leased by another run are skipped.
    """
    started_clock = time.perf_counter()
    started = timezone.now()
    if integration_ids is not None:
        targets = Integration.objects.filter(pk__in=list(integration_ids))
    else:
        targets = monitored_integrations()
    if provider:
        targets = targets.filter(provider=provider)
    if organization is not None:
        targets = targets.filter(organization=organization)
    due_before = started if force else started - timedelta(minutes=app_settings.interval_minutes()) / 2
    _ensure_states(targets)
    due = Q(last_health_check_at__isnull=True) | Q(last_health_check_at__lt=due_before)
    summary = RunSummary(requested=targets.filter(due).count())
    # Never connected: nothing to check yet (`pending`; and below, those without tokens).
    # The monitored integrations include none that are pending.
    checkable = targets
    if integration_ids is not None:
        _set_aside(targets.filter(due, status=Integration.Status.PENDING), summary)
        checkable = targets.exclude(status=Integration.Status.PENDING)
    concurrency = app_settings.concurrency()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="health-check") as pool:
        while True:
            aside = {item.integration_id for item in summary.not_connected}
            claimed = health_claim(
                targets=checkable.exclude(pk__in=aside) if aside else checkable,
                due_before=due_before,
                limit=app_settings.batch_size(),
            )
            if not claimed:
                break
            connected: list[Integration] = []
            never: list[Integration] = []
            for integration in claimed:
                (connected if not_connected_reason(integration) is None else never).append(integration)
            _set_aside(never, summary, claimed=True)
            if connected:
                results = list(pool.map(_check_in_thread, connected))
                summary.checks.extend(health_record_results(results=results))
            if progress is not None:
                progress(len(summary.checks), summary.requested - len(summary.not_connected))
    summary.seconds = time.perf_counter() - started_clock
    if summary.checks:
        logger.info("Health run: %s", summary.as_dict())
    return summary


class IntegrationNotConnected(ConflictError):
    """The integration was never connected: there is nothing to check yet (409)."""


def health_check_now(*, integration: Integration) -> HealthCheck:
    """Check one integration now, in this thread, and record it (the API's "check now").

    An integration never connected is not checked: IntegrationNotConnected says why, and
    its health is left (or put back) at `unknown`."""
    reason = not_connected_reason(integration)
    if reason is not None:
        _set_aside([integration])
        integration.refresh_from_db(fields=["health_status", "updated_at"])
        raise IntegrationNotConnected(f"Not connected yet: {reason}. There is nothing to check.")
    targets = Integration.objects.filter(pk=integration.pk)
    _ensure_states(targets)
    claimed = health_claim(targets=targets, due_before=timezone.now(), limit=1)
    if not claimed:
        raise ConflictError("A health check of this integration is running right now; try again in a few seconds.")
    (record,) = health_record_results(results=[check_integration(claimed[0])])
    integration.refresh_from_db()
    return record


# --- housekeeping -----------------------------------------------------------------------


def health_history_prune(*, older_than_days: int | None = None, batch_size: int = 1000, dry_run: bool = False) -> int:
    """Delete health checks older than the retention, in batches; returns how many."""
    days = app_settings.history_retention_days() if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    old = HealthCheck.objects.filter(checked_at__lt=cutoff)
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        ids = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += HealthCheck.objects.filter(pk__in=ids).delete()[0]


def heartbeat_record(*, name: str) -> ClusterHeartbeat:
    beat, _ = ClusterHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})
    return beat
