"""Subscriber authentication for a batch: OAuth2 client-credentials tokens and mTLS files.

`prepare(deliveries)` is called by the loop before sending: one query reads the `auth` and
`client_certificate` of the batch's webhooks that have either, and each webhook gets a
`SubscriberContext`: the bearer token to send, the client-certificate file, or the error
that fails its deliveries (and only its deliveries).

Tokens are cached in `SubscriberToken` (encrypted), shared by every worker process, until
shortly before they expire. A refresh is claimed with a conditional UPDATE of
`refreshing_until` (a lease): one worker fetches, the others wait for its token instead of
fetching too. A 401 from the receiver drops the token it was sent with (`token_rejected`),
so the next attempt fetches a new one.

The token request goes through a hardened session (common/http.py rules: SSRF checks at
connect time, no redirects, timeouts and a deadline, capped answer). Errors name the
token endpoint's status and OAuth `error` code, never its description or the secret.

Client certificates: requests takes file paths, so each worker process writes a webhook's
PEM (certificate + key) once to a file created 0600 in its own 0700 temporary directory,
replaced when the webhook's certificate changes and removed when the process exits.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.db import AnyOf, PreparedQuery
from common.fields import is_readable
from common.http import cached_session, hardened_session

from .. import app_settings
from ..models import Delivery, SubscriberToken, Webhook

logger = logging.getLogger(__name__)

#: a token without `expires_in` is reused this long (or until a 401)
DEFAULT_TOKEN_SECONDS = 300
#: refresh this long before expiry (at most a tenth of the token's life)
REFRESH_MARGIN_SECONDS = 60
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,40}")

UNREADABLE_AUTH = "The webhook's auth settings cannot be decrypted with FERNET_KEYS: enter them again."
UNREADABLE_CERTIFICATE = "The webhook's client certificate cannot be decrypted with FERNET_KEYS: enter it again."


class SubscriberAuthError(Exception):
    """Why a webhook's deliveries cannot be authenticated; the message is safe to log."""


@dataclass
class SubscriberContext:
    bearer: str | None = None
    token_fetched_at: datetime | None = None
    certificate_file: str | None = None
    error: str = ""
    #: the OAuth2 settings whose token is still to be read or fetched (`resolve`)
    pending_auth: dict[str, str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def needs_fetch(self) -> bool:
        """Bearer auth whose token `resolve` has not (or not yet completely) read."""
        return self.pending_auth is not None or (self._has_auth and self.bearer is None and not self.error)

    def resolve(self) -> None:
        """Read or fetch the bearer token still pending (once, whichever of the claim's sends
        of this webhook asks first; the others wait for it). The loop calls it from a send
        thread, so a token endpoint that hangs holds that webhook's sends only."""
        with self._lock:  # the claim's other sends of this webhook wait for the first
            auth, self.pending_auth = self.pending_auth, None
            if auth is not None:
                self._fetch(auth)

    def _fetch(self, auth: dict[str, str]) -> None:
        webhook_id = self._webhook_id
        try:
            self.bearer, self.token_fetched_at = bearer_token(webhook_id, auth)
        except SubscriberAuthError as exc:
            self.error = str(exc)
            logger.warning("Webhook %s: no subscriber token: %s", webhook_id, exc)

    _webhook_id: uuid.UUID = field(default=uuid.UUID(int=0), repr=False)
    _has_auth: bool = field(default=False, repr=False)


# --- the token endpoint -------------------------------------------------------------------


def _session() -> requests.Session:
    allow, timeout = app_settings.allow_private_urls(), app_settings.request_timeout()
    return cached_session(
        ("webhooks-subscriber-token", allow, timeout),
        lambda: hardened_session(
            allow_private=allow,
            user_agent=app_settings.user_agent(),
            timeout=timeout,
            max_response_bytes=MAX_TOKEN_RESPONSE_BYTES,
        ),
    )


def fetch_token(auth: dict[str, str]) -> tuple[str, float]:
    """Ask the subscriber's token endpoint (client_credentials grant, client_secret_basic);
    returns the token and how many seconds to reuse it."""
    from .sending import error_text  # sending never imports this module

    data = {"grant_type": "client_credentials"}
    for key in ("scope", "audience"):
        if auth.get(key):
            data[key] = auth[key]
    timeout = app_settings.request_timeout()
    try:
        response = _session().post(
            auth["token_url"],
            data=data,
            auth=(auth["client_id"], auth["client_secret"]),
            headers={"Accept": "application/json"},
            timeout=timeout,
            allow_redirects=False,
            verify=app_settings.ca_bundle(),
        )
    except requests.RequestException as exc:
        raise SubscriberAuthError(f"Token endpoint: {error_text(exc, timeout)}") from None
    except Exception as exc:  # e.g. a client id requests cannot encode
        raise SubscriberAuthError(f"Token request failed ({type(exc).__name__}).") from None
    try:
        answer: Any = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200:
        code = answer.get("error") if isinstance(answer, dict) else None
        detail = f" ({code})" if isinstance(code, str) and _OAUTH_ERROR_CODE.fullmatch(code) else ""
        raise SubscriberAuthError(f"Token endpoint answered HTTP {response.status_code}{detail}.")
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token or len(token) > 8192:
        raise SubscriberAuthError("Token endpoint answered without an access_token.")
    token_type = answer.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise SubscriberAuthError("Token endpoint answered a token that is not a bearer token.")
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_TOKEN_SECONDS
    return token, lifetime - min(REFRESH_MARGIN_SECONDS, lifetime / 10)


# --- the shared cache ----------------------------------------------------------------------


def _lease_seconds() -> float:
    return app_settings.request_timeout() + 5


def _claim_refresh(webhook_id: uuid.UUID, row: SubscriberToken | None, now: datetime) -> bool:
    until = now + timedelta(seconds=_lease_seconds())
    if row is None:
        try:
            with transaction.atomic():
                SubscriberToken.objects.create(webhook_id=webhook_id, refreshing_until=until)
            return True
        except IntegrityError:  # another worker created it first: it refreshes
            return False
    free = Q(refreshing_until__isnull=True) | Q(refreshing_until__lt=now)
    return SubscriberToken.objects.filter(free, webhook_id=webhook_id).update(refreshing_until=until) == 1


def bearer_token(webhook_id: uuid.UUID, auth: dict[str, str]) -> tuple[str, datetime]:
    """A valid token for the webhook (cached, or fetched by this worker or another one) and
    when it was fetched; SubscriberAuthError if the token endpoint fails."""
    deadline = time.monotonic() + _lease_seconds() + 1
    while True:
        now = timezone.now()
        row = SubscriberToken.objects.filter(webhook_id=webhook_id).first()
        if (
            row is not None
            and is_readable(row.access_token)
            and row.access_token
            and row.expires_at is not None
            and row.expires_at > now
            and row.fetched_at is not None
        ):
            return row.access_token, row.fetched_at
        if _claim_refresh(webhook_id, row, now):
            try:
                token, seconds = fetch_token(auth)
            except SubscriberAuthError:
                SubscriberToken.objects.filter(webhook_id=webhook_id).update(refreshing_until=None)
                raise
            fetched_at = timezone.now()
            SubscriberToken.objects.filter(webhook_id=webhook_id).update(
                access_token=token,
                expires_at=fetched_at + timedelta(seconds=seconds),
                fetched_at=fetched_at,
                refreshing_until=None,
            )
            return token, fetched_at
        if time.monotonic() > deadline:
            raise SubscriberAuthError("Another worker is fetching the token and has not finished in time.")
        time.sleep(0.05)


def token_rejected(webhook_id: uuid.UUID, fetched_at: datetime) -> None:
    """The receiver answered 401 to this token: drop it (unless a newer one replaced it)."""
    SubscriberToken.objects.filter(webhook_id=webhook_id, fetched_at=fetched_at).update(
        access_token=None, expires_at=None
    )


# --- client certificate files ----------------------------------------------------------------

_files_lock = threading.Lock()
_directory: str | None = None
_files: dict[uuid.UUID, tuple[str, str]] = {}  # webhook id -> (PEM digest, path)


def certificate_file(webhook_id: uuid.UUID, pem: str) -> str:
    """The path of a 0600 file holding the webhook's PEM, written once per process."""
    global _directory
    digest = hashlib.sha256(pem.encode()).hexdigest()
    with _files_lock:
        known = _files.get(webhook_id)
        if known is not None and known[0] == digest and os.path.exists(known[1]):
            return known[1]
        if _directory is None or not os.path.isdir(_directory):
            _directory = tempfile.mkdtemp(prefix="webhook-client-certs-")  # created 0700
            atexit.register(shutil.rmtree, _directory, True)
        path = os.path.join(_directory, f"{webhook_id.hex}-{digest[:16]}.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        if known is not None and known[1] != path:
            try:
                os.unlink(known[1])
            except OSError:
                pass
        _files[webhook_id] = (digest, path)
        return path


# --- per batch -------------------------------------------------------------------------------

#: `prepare`'s query on PostgreSQL, compiled once per process (common/db.py `PreparedQuery`)
_settings_query: PreparedQuery | None = None


def prepare(deliveries: list[Delivery], *, fetch: bool = True) -> dict[uuid.UUID, SubscriberContext]:
    """The subscriber context of each of the batch's webhooks that has auth or a certificate.
    With `fetch=False` bearer tokens are left pending: the sender calls `resolve()` (the
    drain loop does, in its send threads, so that no token endpoint stalls its loop)."""
    ids = {d.webhook_id for d in deliveries}
    with_settings = Q(auth__isnull=False) | Q(client_certificate__isnull=False)
    if connection.vendor == "postgresql":  # one text for any batch, prepared once per connection
        global _settings_query
        if _settings_query is None:
            query = Webhook.objects.filter(AnyOf("pk", "ids")).filter(with_settings)
            _settings_query = PreparedQuery(query.values_list("pk", "auth", "client_certificate"))
        rows = _settings_query.rows(ids=list(ids))
    else:
        query = Webhook.objects.filter(pk__in=ids).filter(with_settings)
        rows = list(query.values_list("pk", "auth", "client_certificate"))
    contexts: dict[uuid.UUID, SubscriberContext] = {}
    for webhook_id, auth, pem in rows:
        context = contexts[webhook_id] = SubscriberContext(_webhook_id=webhook_id)
        if pem is not None:
            if not is_readable(pem):
                context.error = UNREADABLE_CERTIFICATE
                continue
            context.certificate_file = certificate_file(webhook_id, pem)
        if auth is not None:
            if not is_readable(auth):
                context.error = UNREADABLE_AUTH
                continue
            context.pending_auth, context._has_auth = auth, True
            if fetch:
                context.resolve()
    return contexts
