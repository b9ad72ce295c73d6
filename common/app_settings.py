"""The one shape of every app's `app_settings` module, and the project-wide settings.

Each app has an `app_settings.py` of small functions, one per setting, each with a one-line
docstring and its default written once, in the call to `setting()`. They read Django
settings on every call (never at import), so tests can override them with the `settings`
fixture.

`ALLOW_PRIVATE_URLS` governs every outbound URL: webhook targets, integration endpoints
(token, health-check URLs) and health checks. The per-app names it replaces are deprecated
aliases: while one is set it still decides for its app, and a warning names the new setting.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

# The per-app names `ALLOW_PRIVATE_URLS` replaces (deprecated aliases).
DEPRECATED_ALLOW_PRIVATE_URLS = (
    "WEBHOOKS_ALLOW_PRIVATE_URLS",
    "INTEGRATIONS_ALLOW_PRIVATE_URLS",
    "HEALTH_ALLOW_PRIVATE_URLS",
)


def setting(name: str, default: Any, *, environ: bool = False) -> Any:
    """The Django setting `name`; when it is unset or None, the environment variable of
    that name (only with `environ=True`, stripped), else `default`."""
    value = getattr(settings, name, None)
    if value is None and environ:
        value = os.environ.get(name)
        value = None if value is None else value.strip()
    return default if value is None else value


def setting_int(name: str, default: int, *, environ: bool = False) -> int:
    """An integer setting; a value that is not an integer is a configuration error naming it
    (the settings modules already refuse one from the environment at start)."""
    value = setting(name, default, environ=environ)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name}: {value!r} is not an integer.") from None


def max_json_depth() -> int:
    """`API_MAX_JSON_DEPTH`: how deep objects and arrays may nest in a JSON request body or an
    event payload (common/api/parsers.py says why 32)."""
    return setting_int("API_MAX_JSON_DEPTH", 32)


def allow_private_urls(*aliases: str) -> bool:
    """`ALLOW_PRIVATE_URLS` (default false): outbound URLs may be on loopback/private networks.

    `aliases` are the deprecated names that used to decide for the caller's kind of URL, most
    specific first; the first one set (not None) still wins, and logs a deprecation warning.
    """
    for alias in aliases:
        value = getattr(settings, alias, None)
        if value is not None:
            warn_deprecated(alias, "ALLOW_PRIVATE_URLS")
            return bool(value)
    return bool(setting("ALLOW_PRIVATE_URLS", False))


def deprecated_settings_in_use() -> list[str]:
    """The deprecated setting names that are set (not None), in a stable order."""
    return [name for name in DEPRECATED_ALLOW_PRIVATE_URLS if getattr(settings, name, None) is not None]


@functools.cache
def warn_deprecated(old: str, new: str) -> None:
    """Log once per process per name that `old` is deprecated in favour of `new`."""
    logger.warning(
        "The setting %s is deprecated; set %s instead (while %s is set, it overrides %s).", old, new, old, new
    )


def metrics_enabled() -> bool:
    """`METRICS_ENABLED` (default true): record the Prometheus counters and histograms
    (common/metrics.py); false turns recording off (the benchmark's baseline)."""
    return bool(setting("METRICS_ENABLED", True))
