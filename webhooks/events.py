"""The event catalogue (docs/API.md §4). Other apps add their own events with `register_event`.

Events in the `SYSTEM_NAMESPACES` (`integration.`, `webhook.`; `webhook.test` is one of
them) are system-only: the platform emits them itself (health checks, the delivery engine,
services calling `trigger_event`), and a client cannot (`POST /api/events/` answers 400),
so a receiver can trust that such an event is real. The rule goes by namespace, so events
other apps register later under these prefixes are covered without a list to keep. An app
may also register a single event as system-only outside those namespaces
(`register_event(..., system=True)`: `interview.rsvp_changed` and
`interview.updated_externally` come from calendars, never from a client).
"""

from __future__ import annotations

TEST_EVENT = "webhook.test"
ALL_EVENTS = "*"

WEBHOOK_NAMESPACE = "webhook."
SYSTEM_NAMESPACES = ("integration.", WEBHOOK_NAMESPACE)

WEBHOOK_DISABLED = "webhook.disabled"
WEBHOOK_DELIVERY_EXHAUSTED = "webhook.delivery.exhausted"

_catalogue: dict[str, str] = {
    "application.created": "A candidate applied to a job.",
    "application.stage_changed": "An application moved to another pipeline stage.",
    "application.rejected": "An application was rejected.",
    "application.hired": "An application ended in a hire.",
    "interview.scheduled": "An interview was scheduled.",
    "interview.completed": "An interview took place.",
    "interview.cancelled": "An interview was cancelled.",
    "offer.created": "An offer was drafted.",
    "offer.sent": "An offer was sent to the candidate.",
    "offer.accepted": "The candidate accepted an offer.",
    "offer.declined": "The candidate declined an offer.",
    "candidate.created": "A candidate was added.",
    "candidate.updated": "A candidate's details changed.",
    "job.created": "A job was created.",
    "job.opened": "A job was opened for applications.",
    "job.closed": "A job was closed.",
    TEST_EVENT: "A test event sent by the test endpoint; subscription not needed.",
    WEBHOOK_DISABLED: "A webhook was disabled: by the delivery engine (410 Gone, or too many consecutive failed "
    "deliveries), through the API or in the admin. Never sent to the disabled webhook itself.",
    WEBHOOK_DELIVERY_EXHAUSTED: "A delivery used all its retries and ended failed. Never sent to the webhook "
    "that failed it; not sent for deliveries of webhook.* events.",
}


_system_events: set[str] = set()


def register_event(name: str, description: str, *, system: bool = False) -> None:
    _catalogue[name] = description
    if system:
        _system_events.add(name)


def event_catalogue() -> dict[str, str]:
    return dict(_catalogue)


def is_known_event(name: str) -> bool:
    return name in _catalogue


def is_system_event(name: str) -> bool:
    """Only the platform emits it (its namespace is a system one), never a client."""
    return name.startswith(SYSTEM_NAMESPACES) or name in _system_events
