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

from dataclasses import dataclass, field
from typing import Any

TEST_EVENT = "webhook.test"
ALL_EVENTS = "*"

WEBHOOK_NAMESPACE = "webhook."
SYSTEM_NAMESPACES = ("integration.", WEBHOOK_NAMESPACE)

WEBHOOK_DISABLED = "webhook.disabled"
WEBHOOK_DELIVERY_EXHAUSTED = "webhook.delivery.exhausted"

#: Custom event types (an organization's own, `webhooks.models.EventType`) live here, so
#: their names never collide with catalogue or system ones.
CUSTOM_NAMESPACE = "custom."


@dataclass(frozen=True)
class EventDefinition:
    """One catalogue event: its JSON Schema (draft 2020-12), version and example payload
    (see webhooks/schemas.py), and optionally how long its logs and payloads are kept."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    example: dict[str, Any] = field(default_factory=dict)
    deprecated: bool = False
    #: Days its attempt logs, finished deliveries and events are kept (None: WEBHOOKS_LOG_RETENTION_DAYS).
    retention_days: int | None = None


_descriptions: dict[str, str] = {
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


def _definition(name: str, description: str, **contract: Any) -> EventDefinition:
    from .schemas import CATALOGUE_EXAMPLES, CATALOGUE_SCHEMAS, GENERIC_SCHEMA

    contract.setdefault("schema", CATALOGUE_SCHEMAS.get(name, GENERIC_SCHEMA))
    contract.setdefault("example", CATALOGUE_EXAMPLES.get(name, {}))
    return EventDefinition(name=name, description=description, **contract)


_catalogue: dict[str, EventDefinition] = {name: _definition(name, text) for name, text in _descriptions.items()}


def register_event(
    name: str,
    description: str,
    *,
    schema: dict[str, Any] | None = None,
    version: int = 1,
    example: dict[str, Any] | None = None,
    deprecated: bool = False,
    retention_days: int | None = None,
    system: bool = False,
) -> None:
    """Add an event to the catalogue. Without a `schema` any JSON object is valid; a given
    schema is checked against the draft 2020-12 metaschema and the example against it.
    `system=True` makes this one event system-only outside the system namespaces."""
    from .schemas import GENERIC_SCHEMA, check_schema, validate_payload

    if name.startswith(CUSTOM_NAMESPACE):
        raise ValueError(f"{CUSTOM_NAMESPACE}* names are organizations' own event types.")
    checked = GENERIC_SCHEMA if schema is None else check_schema(schema)
    if example is not None:
        validate_payload(checked, example, root="example")
    _catalogue[name] = EventDefinition(
        name=name,
        description=description,
        schema=checked,
        version=version,
        example=example or {},
        deprecated=deprecated,
        retention_days=retention_days,
    )
    if system:
        _system_events.add(name)


def event_catalogue() -> dict[str, str]:
    """name -> description of every catalogue event."""
    return {name: definition.description for name, definition in _catalogue.items()}


def event_definitions() -> dict[str, EventDefinition]:
    return dict(_catalogue)


def event_definition(name: str) -> EventDefinition | None:
    return _catalogue.get(name)


def is_known_event(name: str) -> bool:
    return name in _catalogue


def is_custom_event(name: str) -> bool:
    return name.startswith(CUSTOM_NAMESPACE)


def is_system_event(name: str) -> bool:
    """Only the platform emits it (its namespace is a system one), never a client."""
    return name.startswith(SYSTEM_NAMESPACES) or name in _system_events
