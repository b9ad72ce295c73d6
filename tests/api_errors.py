"""Reading the API's error body (common/api/exceptions.py) in tests, in one place.

Every error answers `{"type", "title", "detail", "errors"}`; field errors are under
`errors`, nested fields as dotted paths (`config.tenant`, `events.0`). Tests read errors
only through these helpers, so a change of shape is one change here.
"""

from __future__ import annotations

from typing import Any

PROBLEM_KEYS = {"type", "title", "detail", "errors"}


def problem(response) -> dict[str, Any]:
    """The error body, checked for the shape every API error has."""
    body = response.json()
    assert isinstance(body, dict), body
    missing = PROBLEM_KEYS - body.keys()
    assert not missing, f"error body lacks {sorted(missing)}: {body}"
    assert isinstance(body["type"], str) and body["type"], body
    assert isinstance(body["title"], str) and isinstance(body["detail"], str), body
    assert isinstance(body["errors"], dict), body
    for field, messages in body["errors"].items():
        assert isinstance(messages, list) and all(isinstance(m, str) for m in messages), (field, body)
    return body


def field_errors(response) -> dict[str, list[str]]:
    """`{field: [messages]}` of an error response (`{}` when it names no field)."""
    return problem(response)["errors"]


def error_detail(response) -> str:
    """The error's one-line `detail`."""
    return problem(response)["detail"]


def error_type(response) -> str:
    """The error's stable `type` slug (`validation_error`, `not_found`, `conflict`...)."""
    return problem(response)["type"]


def error_text(response) -> str:
    """Detail and every field message, for asserting a message appears somewhere."""
    body = problem(response)
    return " ".join([body["detail"], *(m for messages in body["errors"].values() for m in messages)])


def error_fields(response) -> set[str]:
    """The top-level fields named by an error (`config` for `config.tenant`)."""
    return {field.split(".", 1)[0] for field in field_errors(response)}
