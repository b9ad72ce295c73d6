"""Connection issues: typed problems of an integration, opened and resolved without flapping.

Every detector (health checks, token refresh and minting, the provider client, SAML
metadata checks) reports what it saw through two calls:

- `issue_detected(integration=, kind=, message=, details=)`: the problem was seen now.
  Lasting kinds open at once; transient kinds (`provider_unavailable`, `rate_limited`) open
  only after `INTEGRATION_ISSUE_OPEN_AFTER` detections in a row (default 3); until then
  the row is `pending`, invisible and silent.
- `issue_cleared(integration=, kind=)`: the problem was looked for and not seen. An open
  issue resolves after `INTEGRATION_ISSUE_RESOLVE_AFTER` such observations in a row
  (default 3): a sustained recovery, so alternating results never open and resolve it over
  and over. `immediately=True` is for definitive fixes (a successful re-authorization).

Opening sends `integration.issue.opened`, resolving `integration.issue.resolved`; both are
delivered when the caller's transaction commits. Every write locks the active row first,
so two detectors (a health run and a request refreshing a token) never lose each other's
counts; the unique constraint on the active row decides who creates it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.app_settings import setting_int

from .models import ConnectionIssue, Integration

logger = logging.getLogger(__name__)

Kind = ConnectionIssue.Kind
ACTIVE = (ConnectionIssue.Status.PENDING, ConnectionIssue.Status.OPEN)
#: kinds that come and go on their own: they open only after several detections in a row
TRANSIENT_KINDS = frozenset({Kind.PROVIDER_UNAVAILABLE, Kind.RATE_LIMITED})

EVENT_OPENED = "integration.issue.opened"
EVENT_RESOLVED = "integration.issue.resolved"
MAX_MESSAGE = 1000


def open_after(kind: str) -> int:
    """Detections in a row that open an issue of `kind`."""
    if kind in TRANSIENT_KINDS:
        return max(1, setting_int("INTEGRATION_ISSUE_OPEN_AFTER", 3, environ=True))
    return 1


def resolve_after() -> int:
    """Observations in a row without the problem that resolve an open issue."""
    return max(1, setting_int("INTEGRATION_ISSUE_RESOLVE_AFTER", 3, environ=True))


def _active(integration: Integration, kind: str) -> ConnectionIssue | None:
    return (
        ConnectionIssue.objects.select_for_update()
        .filter(integration_id=integration.pk, kind=kind, status__in=ACTIVE)
        .first()
    )


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


def _announce(event: str, issue: ConnectionIssue, integration: Integration) -> None:
    from webhooks.services import trigger_event  # webhooks imports integrations

    trigger_event(organization=integration.organization, event=event, payload=issue_payload(issue, integration))


def issue_detected(
    *, integration: Integration, kind: str, message: str, details: dict[str, Any] | None = None
) -> ConnectionIssue:
    """Record that `kind` was seen on `integration` now; returns the active row (pending or open)."""
    now = timezone.now()
    message = message[:MAX_MESSAGE]
    for _ in range(3):  # a concurrent detector may create the active row between our read and insert
        try:
            with transaction.atomic():
                issue = _active(integration, kind)
                if issue is None:
                    issue = ConnectionIssue.objects.create(
                        organization_id=integration.organization_id,
                        integration_id=integration.pk,
                        kind=kind,
                        message=message,
                        details=details or {},
                        count=1,
                        detected_streak=1,
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                else:
                    issue.count += 1
                    issue.detected_streak += 1
                    issue.clear_streak = 0
                    issue.message = message
                    issue.details = details if details is not None else issue.details
                    issue.last_seen_at = now
                    issue.save(
                        update_fields=[
                            "count",
                            "detected_streak",
                            "clear_streak",
                            "message",
                            "details",
                            "last_seen_at",
                            "updated_at",
                        ]
                    )
                if issue.status == ConnectionIssue.Status.PENDING and issue.detected_streak >= open_after(kind):
                    issue.status = ConnectionIssue.Status.OPEN
                    issue.opened_at = now
                    issue.save(update_fields=["status", "opened_at", "updated_at"])
                    logger.warning("Integration %s: %s issue opened: %s", integration.pk, kind, message)
                    _announce(EVENT_OPENED, issue, integration)
                return issue
        except IntegrityError:
            continue
    raise RuntimeError("could not record the connection issue")  # pragma: no cover - needs 3 lost races


def issue_cleared(*, integration: Integration, kind: str, immediately: bool = False) -> ConnectionIssue | None:
    """Record that `kind` was looked for on `integration` and not seen; returns the issue
    if this resolved it."""
    with transaction.atomic():
        issue = _active(integration, kind)
        if issue is None:
            return None
        if issue.status == ConnectionIssue.Status.PENDING:  # never opened: forget it
            issue.delete()
            return None
        issue.clear_streak += 1
        issue.detected_streak = 0
        if not immediately and issue.clear_streak < resolve_after():
            issue.save(update_fields=["clear_streak", "detected_streak", "updated_at"])
            return None
        issue.status = ConnectionIssue.Status.RESOLVED
        issue.resolved_at = timezone.now()
        issue.save(update_fields=["status", "resolved_at", "clear_streak", "detected_streak", "updated_at"])
        logger.info("Integration %s: %s issue resolved", integration.pk, kind)
        _announce(EVENT_RESOLVED, issue, integration)
        return issue


def open_issues(integration: Integration) -> list[ConnectionIssue]:
    return list(integration.connection_issues.filter(status=ConnectionIssue.Status.OPEN))
