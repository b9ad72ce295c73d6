"""Extension points around every provider call: a rate limiter before, a call log after.

Two tiny registries, so the limiter and the call log plug in without editing the client:

    from integrations.client import hooks
    hooks.register_before_call(limiter.acquire)   # (integration, method, path) -> waited ms
    hooks.register_after_call(call_log.record)    # (CallRecord) -> None

`before_call` runs before each HTTP request the client sends (retries included) and
returns the milliseconds it waited; it may raise `RateLimited` to refuse the call. The
client's `path` is the path relative to the API base, without the query. `after_call`
runs after each request with its `CallRecord` (on success and failure alike); it must be
fast and must not raise (an exception is logged and swallowed). With nothing registered
both are no-ops.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integrations.models import Integration

logger = logging.getLogger(__name__)

BeforeCall = Callable[["Integration", str, str], float]
AfterCall = Callable[["CallRecord"], None]

_before: list[BeforeCall] = []
_after: list[AfterCall] = []


@dataclass(frozen=True)
class CallRecord:
    """One HTTP request to a provider, as the call log stores it (no secrets)."""

    integration_id: uuid.UUID
    organization_id: uuid.UUID
    method: str
    #: relative to the API base; query parameters with secret names are masked
    path: str
    #: the provider's HTTP status; None when no answer came
    status: int | None
    duration_ms: float
    #: decoded bytes of the answer's body
    bytes: int
    #: milliseconds waited on a rate limit before sending
    waited_ms: float
    #: "" on success, else `rate_limited`, `credentials_rejected`, `provider_error`,
    #: `provider_unavailable`, `timeout`, `connection`, `too_large`, `refused`
    error_kind: str = ""
    #: 1 for the first attempt of a call, 2+ for its retries
    attempt: int = 1


def register_before_call(hook: BeforeCall) -> None:
    if hook not in _before:
        _before.append(hook)


def register_after_call(hook: AfterCall) -> None:
    if hook not in _after:
        _after.append(hook)


def unregister(hook: BeforeCall | AfterCall) -> None:
    for registry in (_before, _after):
        if hook in registry:
            registry.remove(hook)  # type: ignore[arg-type]


def before_call(integration: Integration, method: str, path: str) -> float:
    """Run the before-call hooks; the milliseconds they waited in all. Their exceptions (the
    limiter's `RateLimitExceeded`) propagate: the call must not be sent."""
    waited = 0.0
    for hook in _before:
        waited += float(hook(integration, method, path) or 0)
    return waited


def after_call(record: CallRecord) -> None:
    for hook in _after:
        try:
            hook(record)
        except Exception:  # the call log must never fail a provider call
            logger.exception("after_call hook %r failed", hook)
