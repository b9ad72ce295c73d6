"""Payload transforms: a webhook's JMESPath expression whose result becomes the body's `data`.

The expression is evaluated against the whole message body (`{"type", "timestamp",
"data"}`), so `data.application` keeps one object and `{id: data.application_id, kind: type}`
reshapes it. It is compiled when saved (a parse error or an unknown function is a 400) and
evaluated at delivery (webhooks/engine/sending.py): a transform that fails there fails that
delivery only, with `TransformError`'s message in its log (which never quotes payload values).
"""

from __future__ import annotations

import functools
from typing import Any

import jmespath
from django.core.exceptions import ValidationError
from jmespath import exceptions as jmespath_errors
from jmespath import functions as jmespath_functions
from jmespath.parser import ParsedResult

MAX_EXPRESSION_LENGTH = 1000

_KNOWN_FUNCTIONS = {
    name.removeprefix("_func_") for name in dir(jmespath_functions.Functions) if name.startswith("_func_")
}


class TransformError(Exception):
    """A transform failed on an event; the message is safe to log (no payload values)."""


@functools.lru_cache(maxsize=512)
def compiled(expression: str) -> ParsedResult:
    return jmespath.compile(expression)


def _functions_in(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            names.add(str(node.get("value")))
        for child in node.get("children", []):
            names |= _functions_in(child)
    return names


def validate_transform(expression: Any) -> str:
    """The expression to store ("" for none), or a ValidationError with the parse error."""
    if expression is None or expression == "":
        return ""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValidationError(f"A JMESPath expression of at most {MAX_EXPRESSION_LENGTH} characters.")
    try:
        parsed = compiled(expression)
    except jmespath_errors.JMESPathError as exc:
        raise ValidationError(f"Invalid JMESPath expression: {' '.join(str(exc).split())}") from None
    unknown = _functions_in(parsed.parsed) - _KNOWN_FUNCTIONS
    if unknown:
        raise ValidationError(f"Invalid JMESPath expression: unknown function {', '.join(sorted(unknown))}().")
    return expression


def apply_transform(expression: str, body: dict[str, Any]) -> Any:
    """The transformed `data`, or TransformError."""
    try:
        return compiled(expression).search(body)
    except jmespath_errors.JMESPathTypeError as exc:
        raise TransformError(
            f"Transform failed: in {exc.function_name}(), expected {' or '.join(exc.expected_types)}, "
            f"got {exc.actual_type}."
        ) from None
    except jmespath_errors.JMESPathError as exc:
        raise TransformError(f"Transform failed ({type(exc).__name__}).") from None
    except (RecursionError, TypeError, ValueError) as exc:
        raise TransformError(f"Transform failed ({type(exc).__name__}).") from None
