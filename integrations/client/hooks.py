"""Hooks around every provider call: the client calls `before_call` before sending (rate
limits: it may wait, or raise) and `after_call` once the call is over (the call log).

A tiny registry so the client knows nothing of the limiter or the log: apps register their
functions in `AppConfig.ready()` (integrations/apps.py registers the limiter and the call log).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallRecord:
    """One finished provider call, as the call log stores it. `path` has its query secrets
    removed; `status` is None when no answer came; `error_kind` is empty on success."""

    integration_id: Any
    organization_id: Any
    method: str
    path: str
    status: int | None
    duration_ms: float
    bytes: int
    waited_ms: float
    error_kind: str = ""


BeforeCall = Callable[[Any, str, str], float]
AfterCall = Callable[[CallRecord], None]

_before: list[BeforeCall] = []
_after: list[AfterCall] = []


def register_before_call(fn: BeforeCall) -> None:
    """`fn(integration, method, path) -> waited_ms`; it may raise to refuse the call."""
    if fn not in _before:
        _before.append(fn)


def register_after_call(fn: AfterCall) -> None:
    """`fn(record)`; its errors are logged and never reach the caller."""
    if fn not in _after:
        _after.append(fn)


def before_call(integration: Any, method: str, path: str) -> float:
    """Run every before-call hook; the milliseconds they waited in total. Their exceptions
    (the limiter's `RateLimitExceeded`) propagate: the call must not be sent."""
    return sum(float(fn(integration, method, path) or 0) for fn in _before)


def after_call(record: CallRecord) -> None:
    for fn in _after:
        try:
            fn(record)
        except Exception:
            logger.exception("An after-call hook failed (the call itself is unaffected).")
