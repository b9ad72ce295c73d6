"""The OAuth flow is bound to the browser that started it (RFC 6749 §10.12).

A flow started in a browser gets a random binding secret: its SHA-256 goes on the
`OAuthState` row, the secret into an HttpOnly cookie (`oauth_binding_<state hash prefix>`,
one per flow, path = the callback, SameSite=Lax so the provider's top-level redirect back
carries it). The HTML browser callback completes a flow only with that cookie: the same
authorization URL opened in another browser (another organization's victim) is refused,
before anything is exchanged or stored.

- Admin: "Authorize" is a POST with the CSRF token (`integrations/admin.py`); it binds at once.
- API (API key, no browser session): `GET .../oauth/authorize/` returns `start_url`, a
  page on our domain. Its button (a POST with a CSRF token, so neither an `<img>` nor
  another site's form can press it) binds the flow to the browser that presses it first,
  sets the cookie and redirects to the provider; a bound flow cannot be bound again. Hand
  `start_url` only to the user who should authorize. API callers completing with
  `POST .../oauth/callback/` (the API key authenticates it) need no cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from integrations import app_settings
from integrations.models import Integration, OAuthState

from .client import resolve_client

COOKIE_PREFIX = "oauth_binding_"
#: the callback with and without its trailing slash
COOKIE_PATH = app_settings.CALLBACK_PATH.rstrip("/")


class OAuthBindingRefused(Exception):
    """The flow cannot be bound (unknown, used, expired or already bound state)."""


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_binding() -> tuple[str, str]:
    """A binding secret for the cookie and its hash for the row."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_secret(secret)


def cookie_name(state_hash: str) -> str:
    return COOKIE_PREFIX + state_hash[:16]


def binding_matches(row: OAuthState, presented: str) -> bool:
    return bool(row.binding_hash and presented) and hmac.compare_digest(row.binding_hash, hash_secret(presented))


def presented_binding(request: HttpRequest, state_hash: str) -> str:
    return request.COOKIES.get(cookie_name(state_hash), "")


def set_binding_cookie(response: HttpResponse, request: HttpRequest, *, state_hash: str, secret: str) -> None:
    response.set_cookie(
        cookie_name(state_hash),
        secret,
        max_age=int(app_settings.state_ttl().total_seconds()),
        path=COOKIE_PATH,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def clear_binding_cookie(response: HttpResponse, *, state_hash: str) -> None:
    response.delete_cookie(cookie_name(state_hash), path=COOKIE_PATH, samesite="Lax")


@transaction.atomic
def oauth_bind_state(*, state: str) -> tuple[str, str]:
    """Bind an API-started flow to this browser: (the binding secret, the provider's URL).

    Only an unbound, unused, unexpired state; the row is locked, so of two browsers
    pressing at once one wins and the other is refused.
    """
    row = OAuthState.objects.select_for_update().filter(state_hash=hash_secret(state)).first()
    if row is None or row.used_at is not None or row.is_expired or row.binding_hash:
        raise OAuthBindingRefused("This authorization link is unknown, used, expired or was opened in another browser.")
    integration = Integration.objects.get(pk=row.integration_id)
    client = resolve_client(integration, redirect_uri=row.redirect_uri)  # refuses what authorize would refuse
    url = client.authorization_request(state=state, code_verifier=row.code_verifier).url
    secret, row.binding_hash = new_binding()
    row.save(update_fields=["binding_hash"])
    return secret, url
