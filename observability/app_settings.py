"""Settings of `/metrics` (see common/app_settings.py for the shape)."""

from __future__ import annotations

from common.app_settings import setting


def metrics_token() -> str:
    """`METRICS_TOKEN` (default unset: `/metrics` is open): when set, a scrape must send
    `Authorization: Bearer <token>`."""
    return str(setting("METRICS_TOKEN", "") or "")
