"""Client input quoted in messages as JSON, never as a Python repr (`"slack"`, not `'slack'` or `['slack']`)."""

from __future__ import annotations

import json
from typing import Any

MAX_QUOTED = 200


def quoted(value: Any) -> str:
    """`"slack"` for a string, the JSON text for anything else; cut at `MAX_QUOTED` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = json.dumps(str(value), ensure_ascii=False)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"
