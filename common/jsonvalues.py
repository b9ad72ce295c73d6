"""Checks on JSON values we accept: how deep they nest, and text no database can store.

Both walk the value with an explicit stack, never by recursion: a value nested thousands of
levels deep (the JSON parser builds one before anything looks at it, and Python callers of
the services can pass one) costs time proportional to its size and cannot exhaust the
interpreter's stack (`RecursionError`).

Depth counts containers: a scalar is 0 deep, `{}` and `[]` are 1, `{"a": [1]}` is 2.
"""

from __future__ import annotations

import re
from typing import Any

#: NUL and lone UTF-16 surrogates: PostgreSQL refuses both in text and jsonb columns.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether objects and arrays in `value` nest more than `limit` levels deep.

    Stops at the first container past the limit, so an absurdly deep value costs no more
    than `limit` levels of it.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return True
        stack.extend((child, depth) for child in children if isinstance(child, dict | list | tuple))
    return False


def contains_unstorable_text(value: Any) -> bool:
    """Whether any string in `value`, keys included, holds a NUL or a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE_TEXT.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False
