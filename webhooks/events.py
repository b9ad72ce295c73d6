"""The event catalogue (docs/API.md §4). Other apps add their own events with `register_event`."""

from __future__ import annotations

TEST_EVENT = "webhook.test"
ALL_EVENTS = "*"

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
}


def register_event(name: str, description: str) -> None:
    _catalogue[name] = description


def event_catalogue() -> dict[str, str]:
    return dict(_catalogue)


def is_known_event(name: str) -> bool:
    return name in _catalogue
