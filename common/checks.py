"""System checks of the project's settings (`manage.py check`, and every `runserver`/`migrate`)."""

from __future__ import annotations

from django.core import checks

from .app_settings import deprecated_settings_in_use


@checks.register(checks.Tags.compatibility)
def check_deprecated_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A warning for each deprecated alias of `ALLOW_PRIVATE_URLS` that is set."""
    return [
        checks.Warning(
            f"{name} is deprecated.",
            hint=f"Set ALLOW_PRIVATE_URLS instead; while {name} is set it overrides ALLOW_PRIVATE_URLS.",
            id="common.W001",
        )
        for name in deprecated_settings_in_use()
    ]
