"""The provider API client: `integration_client(integration)` and its typed errors.

    from integrations.client import integration_client
    client = integration_client(integration)
    calendar = client.get("users/me/calendarList/primary")
    for event in client.paginate("calendars/primary/events", params={"maxResults": 250}):
        ...

See docs/CLIENT.md; the rate limiter and call log plug in through `hooks`.
"""

from .client import IntegrationClient, integration_client
from .errors import PathRefused, ProviderError, RateLimited, ReauthorizationRequired
from .hooks import CallRecord

__all__ = [
    "CallRecord",
    "IntegrationClient",
    "PathRefused",
    "ProviderError",
    "RateLimited",
    "ReauthorizationRequired",
    "integration_client",
]
