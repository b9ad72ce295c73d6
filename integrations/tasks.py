"""django-q2 entry points: thin; the services own the logic and the state."""

from __future__ import annotations

from dataclasses import asdict


def refresh_expiring_tokens() -> dict[str, int]:
    from .oauth.tokens import oauth_refresh_expiring_tokens

    return asdict(oauth_refresh_expiring_tokens())


def prune_provider_calls() -> int:
    from .retention import provider_calls_prune

    return provider_calls_prune().calls
