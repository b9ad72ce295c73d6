"""What provider calls tell the connection issues (`integrations.issues`), cheaply.

Failures are reported as they happen: a 401 that survives a refresh, or a lost grant, is
`credentials_rejected`; a 429 `rate_limited`; a 5xx, timeout or connection failure
`provider_unavailable` (transient kinds open only after several in a row).

A success should clear `provider_unavailable` and `rate_limited`, but almost always there
is nothing to clear, and a query per call would cost more than the call's own overhead.
So each process remembers, per integration, whether it has an active issue of those kinds:
known once it reported one itself, and otherwise re-read with one indexed query
(`connection_issue_integration`: integration, status) at most every
`INTEGRATIONS_CLIENT_ISSUE_CHECK_TTL` seconds (default 60). A healthy integration costs
no query per call; an issue opened by another process (a health run) is cleared by calls
here within that period.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from integrations import app_settings
from integrations.issues import ACTIVE, issue_cleared, issue_detected
from integrations.models import ConnectionIssue, Integration

logger = logging.getLogger(__name__)

Kind = ConnectionIssue.Kind
#: what a successful call proves absent
CLEARED_BY_SUCCESS = (Kind.PROVIDER_UNAVAILABLE, Kind.RATE_LIMITED)

_lock = threading.Lock()
#: integration id -> (monotonic time it was learnt, whether an issue to clear may be active)
_known: dict[uuid.UUID, tuple[float, bool]] = {}


def forget() -> None:
    """Drop what this process knows (tests; after an operator resolved issues by hand)."""
    with _lock:
        _known.clear()


def detected(integration: Integration, kind: str, message: str, details: dict[str, Any] | None = None) -> None:
    try:
        issue_detected(integration=integration, kind=kind, message=message, details=details)
    except Exception:  # reporting must never hide the provider's own error from the caller
        logger.exception("Could not record a %s issue for integration %s", kind, integration.pk)
        return
    if kind in CLEARED_BY_SUCCESS:
        with _lock:
            _known[integration.pk] = (time.monotonic(), True)


def succeeded(integration: Integration) -> None:
    now = time.monotonic()
    known = _known.get(integration.pk)
    if known is not None and not known[1] and now - known[0] < app_settings.client_issue_check_ttl():
        return  # nothing active when last looked, recently enough: no query
    try:
        active = set(
            ConnectionIssue.objects.filter(
                integration_id=integration.pk, kind__in=CLEARED_BY_SUCCESS, status__in=ACTIVE
            ).values_list("kind", flat=True)
        )
        for kind in active:
            issue_cleared(integration=integration, kind=kind)
    except Exception:
        logger.exception("Could not clear issues of integration %s", integration.pk)
        return
    with _lock:
        # Still active (a resolve needs several successes in a row): look again next time.
        _known[integration.pk] = (now, bool(active))
