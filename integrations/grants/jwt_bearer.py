"""The JWT bearer grant (RFC 7523). To be built: see integrations/grants/__init__.py."""

from __future__ import annotations

from common.exceptions import ApplicationError
from integrations.models import Integration
from integrations.oauth.client import TokenSet


def mint(integration: Integration) -> TokenSet:
    raise ApplicationError("The JWT bearer grant is not available yet.")


def consent_url(integration: Integration) -> str:
    return ""
