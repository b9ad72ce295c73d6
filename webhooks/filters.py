"""Content filters: which of a webhook's subscribed events it receives (docs/WEBHOOKS.md).

A filter is a JSON object. Each key is either a dotted path into the message body
(`{"type", "timestamp", "data"}`, the body a receiver gets) mapped to a condition, or
`$and` / `$or` mapped to a list of filters. All keys of an object must hold.

    {"data.job.department": {"$in": ["engineering"]}, "data.offer.salary": {"$gte": 50000}}
    {"$or": [{"type": "offer.created"}, {"data.stage.name": {"$startsWith": "Final"}}]}

A condition is an object of operators (all must hold) or a plain value (`$eq`). Semantics,
chosen so a filter never raises at fan-out:
- a missing path matches only `$exists: false`, `$neq` and `$nin` (like MongoDB);
- `$gt`/`$gte`/`$lt`/`$lte` compare numbers with numbers and strings with strings (ISO 8601
  times compare as strings); any other pair does not match (booleans are not numbers);
- `$eq`/`$neq`/`$in`/`$nin` compare JSON values (`1` equals `1.0`, never `true`);
- numbers compare as the decimals their JSON says (a float as its shortest repr, as
  PostgreSQL's jsonb stores it), strings in codepoint order;
- `$startsWith` matches strings only;
- a numeric path segment (ASCII digits) indexes an array (`data.stages.0.name`).

On PostgreSQL the fan-out evaluates the same semantics in SQL, inside its one statement:
`webhooks_filter_matches(filter, body)` (migration 0012); tests/webhooks/test_filter_sql.py
holds the two to the same answers.

`validate_filter` bounds a filter's size and nesting and names the path of a problem;
`matches` is pure and cheap (no I/O), so fan-out can run it for every event.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

MAX_FILTER_BYTES = 4096
MAX_DEPTH = 4  # nested $and/$or levels
MAX_CONDITIONS = 50
MAX_PATH_LENGTH = 200
MAX_LIST_LENGTH = 100

COMPARISONS = {"$gt", "$gte", "$lt", "$lte"}
OPERATORS = {"$eq", "$neq", "$in", "$nin", "$exists", "$startsWith", *COMPARISONS}
COMBINATORS = {"$and", "$or"}

_MISSING = object()


class _Budget:
    conditions = 0


def _fail(where: str, message: str) -> ValidationError:
    return ValidationError(f"{where}: {message}" if where else message)


def validate_filter(value: Any) -> dict[str, Any] | None:
    """The filter to store (None or {} means no filter), or a ValidationError whose message
    names the path in the filter (e.g. `$or[1].data.job.department.$in`)."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise ValidationError("A filter is a JSON object of paths to conditions, e.g. " + _EXAMPLE + ".")
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        raise ValidationError("A filter must be JSON (no NaN or Infinity).") from None
    if size > MAX_FILTER_BYTES:
        raise ValidationError(f"A filter is at most {MAX_FILTER_BYTES} bytes of JSON.")
    _check_filter(value, "", 0, _Budget())
    return value


_EXAMPLE = '{"data.job.department": {"$in": ["engineering"]}}'


def _check_filter(value: Any, where: str, depth: int, budget: _Budget) -> None:
    if not isinstance(value, dict) or not value:
        raise _fail(where, "expected a non-empty object of paths to conditions.")
    if depth > MAX_DEPTH:
        raise _fail(where, f"$and/$or nest at most {MAX_DEPTH} levels.")
    for key, condition in value.items():
        here = f"{where}.{key}" if where else key
        if key in COMBINATORS:
            if not isinstance(condition, list) or not condition:
                raise _fail(here, "expected a non-empty list of filters.")
            for index, item in enumerate(condition):
                _check_filter(item, f"{here}[{index}]", depth + 1, budget)
            continue
        if key.startswith("$"):
            raise _fail(here, f"unknown operator {key!r} at this level (use $and, $or, or a path).")
        _check_path(key, here)
        budget.conditions += 1
        if budget.conditions > MAX_CONDITIONS:
            raise ValidationError(f"A filter has at most {MAX_CONDITIONS} conditions.")
        _check_condition(condition, here)


def _check_path(path: str, where: str) -> None:
    if len(path) > MAX_PATH_LENGTH:
        raise _fail(where[:MAX_PATH_LENGTH] + "…", f"a path is at most {MAX_PATH_LENGTH} characters.")
    segments = path.split(".")
    if any(not segment for segment in segments):
        raise _fail(where, "a path is dot-separated names with no empty part.")
    if segments[0] not in {"type", "timestamp", "data"}:
        raise _fail(where, 'a path starts with "type", "timestamp" or "data" (the message body).')


def _check_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict) or not any(str(k).startswith("$") for k in condition):
        return  # a plain JSON value: `$eq`
    for operator, operand in condition.items():
        here = f"{where}.{operator}"
        if operator not in OPERATORS:
            raise _fail(here, f"unknown operator; one of {', '.join(sorted(OPERATORS))}.")
        if operator in {"$in", "$nin"}:
            if not isinstance(operand, list) or len(operand) > MAX_LIST_LENGTH:
                raise _fail(here, f"expected a list of at most {MAX_LIST_LENGTH} values.")
        elif operator == "$exists":
            if not isinstance(operand, bool):
                raise _fail(here, "expected true or false.")
        elif operator == "$startsWith":
            if not isinstance(operand, str):
                raise _fail(here, "expected a string.")
        elif operator in COMPARISONS:
            if isinstance(operand, bool) or not isinstance(operand, int | float | str):
                raise _fail(here, "expected a number or a string.")


# --- matching -----------------------------------------------------------------------------


def resolve(body: Any, path: str) -> Any:
    """The value at a dotted path, or `_MISSING`."""
    value = body
    for segment in path.split("."):
        if isinstance(value, dict):
            value = value.get(segment, _MISSING)
        elif isinstance(value, list) and segment.isascii() and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _number(value: int | float) -> int | Decimal:
    """A number as the decimal its JSON says: a float compares as its shortest repr (what
    json.dumps writes and PostgreSQL's jsonb stores), not as its binary value, so 1e23
    equals 10**23 here as in the SQL twin (webhooks_filter_matches)."""
    return Decimal(repr(value)) if isinstance(value, float) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans never equal numbers (Python says True == 1), 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return _number(a) == _number(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _comparable(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return numbers or (isinstance(a, str) and isinstance(b, str))


def _holds(operator: str, value: Any, operand: Any) -> bool:
    if operator == "$exists":
        return (value is not _MISSING) is operand
    if operator == "$neq":
        return value is _MISSING or not _equal(value, operand)
    if operator == "$nin":
        return value is _MISSING or not any(_equal(value, item) for item in operand)
    if value is _MISSING:
        return False
    if operator == "$eq":
        return _equal(value, operand)
    if operator == "$in":
        return any(_equal(value, item) for item in operand)
    if operator == "$startsWith":
        return isinstance(value, str) and value.startswith(operand)
    if operator not in COMPARISONS or not _comparable(value, operand):
        return False
    if _is_number(value):
        value, operand = _number(value), _number(operand)
    if operator == "$gt":
        return value > operand
    if operator == "$gte":
        return value >= operand
    if operator == "$lt":
        return value < operand
    return value <= operand  # $lte


def matches(filter_: dict[str, Any] | None, body: dict[str, Any]) -> bool:
    """Whether the message body passes the (validated) filter; no filter passes everything."""
    if not filter_:
        return True
    for key, condition in filter_.items():
        if key == "$and":
            if not all(matches(item, body) for item in condition):
                return False
        elif key == "$or":
            if not any(matches(item, body) for item in condition):
                return False
        else:
            value = resolve(body, key)
            if isinstance(condition, dict) and any(str(k).startswith("$") for k in condition):
                if not all(_holds(op, value, operand) for op, operand in condition.items()):
                    return False
            elif not _holds("$eq", value, condition):
                return False
    return True
