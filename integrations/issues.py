"""Connection issues: typed problems of an integration, opened and resolved without flapping.

Detectors (health checks, token refresh and minting, the OAuth callback, SAML metadata
checks; `integrations/detectors.py` holds the token-side ones) report what they saw:

- `issue_detected(integration=, kind=, message=, details=)`: the problem was seen now.
- `issue_cleared(integration=, kind=, immediately=False)`: it was looked for and not seen.
- `issues_observe(observations=[...])`: both at once for a batch (a health run): one query
  loads the batch's active issues, then only what changes is written.

Rules (the pure policy below):

- Lasting kinds open at the first detection. Transient kinds (`provider_unavailable`,
  `rate_limited`) open only after `INTEGRATION_ISSUE_OPEN_AFTER` detections in a row
  (default 3); until then the row is `pending`: invisible (API), silent (no event), and
  forgotten (deleted) at the first observation without the problem.
- An open issue resolves after `INTEGRATION_ISSUE_RESOLVE_AFTER` observations in a row
  without it (default 3): a sustained recovery. A detection resets that run, so
  alternating results never open a transient issue nor resolve an open one.
- `immediately=True` resolves at once: for definitive fixes (a token obtained again, the
  scopes granted).
- Each issue keeps first and last seen, a count of detections and a message a person
  understands (never a secret: detectors pass redacted text).

Events, delivered when the caller's transaction commits: `integration.issue.opened`,
`integration.issue.resolved`, and `integration.reauthorization_required` beside the opening
of a `reauthorization_required` issue (with the reconnect URL). An issue opened by
`issue_detected` also turns a `healthy` integration `degraded` (health status and open
issues never contradict each other; `health/services.py` applies the same rule to checks).

Locking, one order for every writer: the integration's row, then the issue rows. Whoever
may create an issue holds the integration's lock (the token path already does; the
health run locks its batch), so two detectors never create two active rows (the partial
unique constraint backs this up) nor lose each other's counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from organizations.models import Organization

from . import app_settings
from .models import ConnectionIssue, Integration

logger = logging.getLogger(__name__)

Kind = ConnectionIssue.Kind
Status = ConnectionIssue.Status
ACTIVE = (Status.PENDING, Status.OPEN)
#: kinds that come and go on their own: they open only after several detections in a row
TRANSIENT_KINDS = frozenset({Kind.PROVIDER_UNAVAILABLE, Kind.RATE_LIMITED})

EVENT_OPENED = "integration.issue.opened"
EVENT_RESOLVED = "integration.issue.resolved"
EVENT_REAUTHORIZATION_REQUIRED = "integration.reauthorization_required"
MAX_MESSAGE = 1000


def open_after(kind: str) -> int:
    """Detections in a row that open an issue of `kind`."""
    return app_settings.issue_open_after() if kind in TRANSIENT_KINDS else 1


def resolve_after() -> int:
    """Observations in a row without the problem that resolve an open issue."""
    return app_settings.issue_resolve_after()


# --- policy: an outcome and the current row give the next state (no database) -------------


@dataclass(frozen=True)
class Seen:
    """One detection: what a person should read, and facts for programs."""

    message: str
    details: dict[str, Any] = field(default_factory=dict)


def new_issue(integration: Integration, kind: str, seen: Seen, now: datetime) -> ConnectionIssue:
    issue = ConnectionIssue(
        organization_id=integration.organization_id,
        integration_id=integration.pk,
        kind=kind,
        message=seen.message[:MAX_MESSAGE],
        details=dict(seen.details),
        count=1,
        detected_streak=1,
        clear_streak=0,
        first_seen_at=now,
        last_seen_at=now,
        created_at=now,
        updated_at=now,
    )
    _open_if_due(issue, now)
    return issue


def apply_detection(issue: ConnectionIssue, seen: Seen, now: datetime) -> None:
    issue.count += 1
    issue.detected_streak += 1
    issue.clear_streak = 0
    issue.message = seen.message[:MAX_MESSAGE]
    issue.details = dict(seen.details)
    issue.last_seen_at = now
    issue.updated_at = now
    _open_if_due(issue, now)


def _open_if_due(issue: ConnectionIssue, now: datetime) -> None:
    if issue.status == Status.PENDING and issue.detected_streak >= open_after(issue.kind):
        issue.status = Status.OPEN
        issue.opened_at = now


def just_opened(issue: ConnectionIssue, now: datetime) -> bool:
    return issue.status == Status.OPEN and issue.opened_at == now


Clearing = Literal["forget", "resolve", "wait"]


def apply_clear(issue: ConnectionIssue, now: datetime, *, immediately: bool = False) -> Clearing:
    """`forget`: a pending row never opened (delete it); `resolve`: resolved now; `wait`:
    one more observation without the problem, not yet a sustained recovery."""
    if issue.status == Status.PENDING:
        return "forget"
    issue.clear_streak += 1
    issue.detected_streak = 0
    issue.updated_at = now
    if not immediately and issue.clear_streak < resolve_after():
        return "wait"
    issue.status = Status.RESOLVED
    issue.resolved_at = now
    return "resolve"


#: every field the policy changes on an existing row
POLICY_FIELDS = [
    "count",
    "detected_streak",
    "clear_streak",
    "message",
    "details",
    "last_seen_at",
    "status",
    "opened_at",
    "resolved_at",
    "updated_at",
]


# --- events -----------------------------------------------------------------------------


def issue_payload(issue: ConnectionIssue, integration: Integration) -> dict[str, Any]:
    return {
        "integration": {"id": str(integration.pk), "name": integration.name, "provider": integration.provider},
        "issue": {
            "id": str(issue.pk),
            "kind": issue.kind,
            "status": issue.status,
            "message": issue.message,
            "details": issue.details,
            "count": issue.count,
            "first_seen_at": issue.first_seen_at.isoformat(),
            "last_seen_at": issue.last_seen_at.isoformat(),
            "opened_at": issue.opened_at.isoformat() if issue.opened_at else None,
            "resolved_at": issue.resolved_at.isoformat() if issue.resolved_at else None,
        },
    }


def reauthorization_payload(issue: ConnectionIssue, integration: Integration) -> dict[str, Any]:
    return {
        "integration": {"id": str(integration.pk), "name": integration.name, "provider": integration.provider},
        "issue_id": str(issue.pk),
        "message": issue.message,
        "reconnect_url": issue.details.get("reconnect_url"),
        "consent_url": issue.details.get("consent_url") or None,
    }


def _announce(changes: list[tuple[str, ConnectionIssue, Integration]]) -> None:
    """Trigger the events of opened and resolved issues (sent when the transaction commits)."""
    if not changes:
        return
    from webhooks.services import trigger_event  # webhooks imports integrations

    organizations = Organization.objects.in_bulk({integration.organization_id for _, _, integration in changes})
    for event, issue, integration in changes:
        organization = organizations[integration.organization_id]
        if event == EVENT_OPENED:
            logger.warning("Integration %s: %s issue opened: %s", integration.pk, issue.kind, issue.message)
        else:
            logger.info("Integration %s: %s issue resolved", integration.pk, issue.kind)
        announcements = [(event, issue_payload(issue, integration))]
        if event == EVENT_OPENED and issue.kind == Kind.REAUTHORIZATION_REQUIRED:
            announcements.append((EVENT_REAUTHORIZATION_REQUIRED, reauthorization_payload(issue, integration)))
        for name, payload in announcements:
            try:
                trigger_event(organization=organization, event=name, payload=payload)
            except ValidationError:
                # A payload the events refuse (e.g. text no database can store): the issue
                # it announces must still be written, with the caller's whole transaction.
                logger.exception("Could not emit %s about integration %s.", name, integration.pk)


# --- store: one integration, one kind ------------------------------------------------------


def _active(integration_id: Any, kind: str) -> ConnectionIssue | None:
    return (
        ConnectionIssue.objects.select_for_update()
        .filter(integration_id=integration_id, kind=kind, status__in=ACTIVE)
        .first()
    )


def _lock_integration(integration: Integration) -> bool:
    """Take the integration's row lock (re-entrant in the caller's transaction); False if it is gone."""
    return bool(Integration.objects.select_for_update().filter(pk=integration.pk).values_list("pk", flat=True))


def _detect(integration: Integration, kind: str, seen: Seen, now: datetime) -> ConnectionIssue:
    """Apply one detection under the locks; the caller holds the integration's lock."""
    for _ in range(3):  # a writer ignoring the lock order may create the active row meanwhile
        try:
            with transaction.atomic():
                issue = _active(integration.pk, kind)
                if issue is None:
                    issue = new_issue(integration, kind, seen, now)
                    issue.save(force_insert=True)
                else:
                    apply_detection(issue, seen, now)
                    issue.save(update_fields=POLICY_FIELDS)
                return issue
        except IntegrityError:
            continue
    raise RuntimeError("could not record the connection issue")  # pragma: no cover - needs 3 lost races


@transaction.atomic
def issue_detected(
    *, integration: Integration, kind: str, message: str, details: dict[str, Any] | None = None
) -> ConnectionIssue | None:
    """Record that `kind` was seen on `integration` now; returns the active row (pending or
    open), or None when the integration no longer exists."""
    if not _lock_integration(integration):
        return None
    now = timezone.now()
    issue = _detect(integration, kind, Seen(message, details or {}), now)
    if just_opened(issue, now):
        # Never `healthy` with an open issue: until the next check says more, `degraded`.
        # A new health status is a change of state: it moves `updated_at` (as health/services.py).
        Integration.objects.filter(pk=integration.pk, health_status=Integration.HealthStatus.HEALTHY).update(
            health_status=Integration.HealthStatus.DEGRADED, updated_at=now
        )
        if integration.health_status == Integration.HealthStatus.HEALTHY:
            integration.health_status = Integration.HealthStatus.DEGRADED
        _announce([(EVENT_OPENED, issue, integration)])
    return issue


@transaction.atomic
def issue_cleared(*, integration: Integration, kind: str, immediately: bool = False) -> ConnectionIssue | None:
    """Record that `kind` was looked for on `integration` and not seen; returns the issue
    if this resolved it."""
    issue = _active(integration.pk, kind)
    if issue is None:
        return None
    now = timezone.now()
    outcome = apply_clear(issue, now, immediately=immediately)
    if outcome == "forget":
        issue.delete()
        return None
    issue.save(update_fields=POLICY_FIELDS)
    if outcome == "wait":
        return None
    _announce([(EVENT_RESOLVED, issue, integration)])
    return issue


# --- store: a batch -----------------------------------------------------------------------


@dataclass
class Observation:
    """What one look at an integration (a health check) saw: the kinds detected, and the
    kinds it looked for (a kind looked for and not detected is cleared)."""

    integration: Integration
    detected: dict[str, Seen] = field(default_factory=dict)
    looked_for: frozenset[str] = frozenset()

    @property
    def cleared(self) -> frozenset[str]:
        return self.looked_for - self.detected.keys()


def issues_observe(*, observations: Iterable[Observation]) -> dict[Any, list[ConnectionIssue]]:
    """Record a batch of observations; returns each observed integration's open issues after it.

    One query loads (and locks) the batch's active issues; then one bulk write per kind of
    change (updated, created, forgotten), only when there is one, and one event per issue
    opened or resolved. The caller holds the integrations' row locks (see the module
    docstring); it applies the health rule itself, this leaves `health_status` alone.
    """
    observations = [o for o in observations if o.detected or o.looked_for]
    if not observations:
        return {}
    with transaction.atomic(savepoint=False):  # in the caller's transaction: no savepoint queries
        return _observe(observations)


def _observe(observations: list[Observation]) -> dict[Any, list[ConnectionIssue]]:
    now = timezone.now()
    ids = {o.integration.pk for o in observations}
    active = {
        (issue.integration_id, issue.kind): issue
        for issue in ConnectionIssue.objects.select_for_update()
        .filter(integration_id__in=ids, status__in=ACTIVE)
        .order_by("pk")
    }
    created: dict[Any, tuple[ConnectionIssue, Observation]] = {}
    updated: dict[Any, ConnectionIssue] = {}
    forgotten: list[Any] = []
    changes: list[tuple[str, ConnectionIssue, Integration]] = []
    for observation in observations:
        integration = observation.integration
        for kind, seen in observation.detected.items():
            issue = active.get((integration.pk, kind))
            if issue is None:
                issue = new_issue(integration, kind, seen, now)
                active[(integration.pk, kind)] = issue
                created[issue.pk] = (issue, observation)
            else:
                apply_detection(issue, seen, now)
                if issue.pk not in created:  # else inserted as it ends up
                    updated[issue.pk] = issue
            if just_opened(issue, now):
                changes.append((EVENT_OPENED, issue, integration))
        for kind in observation.cleared:
            issue = active.get((integration.pk, kind))
            if issue is None:
                continue
            outcome = apply_clear(issue, now)
            if outcome == "forget":
                if created.pop(issue.pk, None) is None:
                    forgotten.append(issue.pk)
                    updated.pop(issue.pk, None)
                del active[(integration.pk, kind)]
                continue
            if issue.pk not in created:
                updated[issue.pk] = issue
            if outcome == "resolve":
                del active[(integration.pk, kind)]
                changes.append((EVENT_RESOLVED, issue, integration))
    if updated:
        ConnectionIssue.objects.bulk_update(list(updated.values()), POLICY_FIELDS, batch_size=500)
    if forgotten:
        ConnectionIssue.objects.filter(pk__in=forgotten).delete()
    if created:
        _create(list(created.values()), now)
    _announce(changes)
    result: dict[Any, list[ConnectionIssue]] = {pk: [] for pk in ids}
    for (integration_id, _), issue in active.items():
        if issue.status == Status.OPEN:
            result[integration_id].append(issue)
    return result


def _create(created: list[tuple[ConnectionIssue, Observation]], now: datetime) -> None:
    try:
        with transaction.atomic():
            ConnectionIssue.objects.bulk_create([issue for issue, _ in created], batch_size=500)
    except IntegrityError:
        # A writer ignoring the lock order created one of them meanwhile: one by one, each
        # applied to whatever row is active now (the returned rows keep our view of them).
        for issue, observation in created:
            _detect(observation.integration, issue.kind, Seen(issue.message, issue.details), now)


# --- reads --------------------------------------------------------------------------------


def open_issues(integration: Integration) -> list[ConnectionIssue]:
    return list(integration.connection_issues.filter(status=Status.OPEN))
