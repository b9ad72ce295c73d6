"""The SAML 2.0 bearer assertion grant (RFC 7522). To be built: see integrations/grants/__init__.py."""

from __future__ import annotations

from common.exceptions import ApplicationError
from integrations.models import Integration
from integrations.oauth.client import TokenSet


def mint(integration: Integration) -> TokenSet:
    raise ApplicationError("The SAML bearer grant is not available yet.")
