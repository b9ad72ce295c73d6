"""One health check of one integration against its provider (no database writes here).

The catalogue (`integrations.providers`) says per provider which URL to call, how the
credential is sent and what counts as success; this module applies the rules:

- 2xx within `HEALTH_CHECK_SLOW_MS` → healthy (Slack: only with `"ok": true`);
- a slower 2xx, 429, or no check available for this provider/auth type → degraded;
- 401/403, a provider-level failure (`"ok": false`), any other non-2xx, 5xx, a timeout,
  a connection error, an answer over `HEALTH_CHECK_MAX_RESPONSE_BYTES` once decoded,
  missing credentials or a token that cannot be obtained → unhealthy.

SAML integrations are checked by `health/saml.py`: the IdP metadata and the certificates'
expiry, then (with the SAML bearer grant) a token and `health_check_url` as here. A JWT
integration without `health_check_url` (`custom`) is checked by minting (or reusing) its
token through `get_access_token`: healthy when it is obtained, saying no endpoint was called.

Each result also names the connection issue it shows (`issue_kind`) and the kinds it
looked for (`observed_kinds`: a kind looked for and not shown is cleared by
`integrations.issues`): 401/403 → `credentials_rejected`; 5xx, a timeout, a connection
failure → `provider_unavailable`; 429 → `rate_limited`; an unknown provider, a stored
config that no longer validates, missing config or credentials, no `health_check_url` →
`config_invalid`; a token that needs re-authorization → `reauthorization_required`. A
token refresh that was tried reports its own outcome (`integrations/detectors.py`).

Error texts never contain credential values: they are built from fixed phrases, the
provider's short error code, and are redacted against the credentials and the token.
"""

from __future__ import annotations

import logging
import string
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests
from django.utils import timezone
from requests_hardened.ip_filter import InvalidIPAddress

from common import metrics
from common.exceptions import ApplicationError, UpstreamError
from common.http import ResponseTooLarge, describe_size
from common.redaction import redact
from common.text import printable
from integrations import providers
from integrations.models import UNREADABLE_CREDENTIALS, ConnectionIssue, Integration
from integrations.oauth.client import OAuthError
from integrations.oauth.tokens import ReauthorizationRequired, get_access_token
from integrations.providers.hosts import shared_app_refusal
from integrations.services import MAX_ERROR_LENGTH, integration_secrets
from integrations.validation import describe_errors, stored_config_errors

from . import app_settings
from .http import get_session

logger = logging.getLogger(__name__)

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
MAX_PROVIDER_ERROR = 100

Kind = ConnectionIssue.Kind
#: what an answer of the provider's API shows, present or absent (not its credentials'
#: fate when it answered neither 2xx nor 401/403)
ANSWERED_KINDS: tuple[str, ...] = (Kind.PROVIDER_UNAVAILABLE, Kind.RATE_LIMITED, Kind.CONFIG_INVALID)
#: ... and a 2xx or 401/403 answer shows whether the credentials are accepted
ANSWER_KINDS: tuple[str, ...] = (Kind.CREDENTIALS_REJECTED, *ANSWERED_KINDS)
#: what a request that got no answer shows
NO_ANSWER_KINDS: tuple[str, ...] = (Kind.PROVIDER_UNAVAILABLE, Kind.CONFIG_INVALID)
#: every kind a health check can see: a healthy result saw none of them
HEALTH_KINDS: tuple[str, ...] = (*ANSWER_KINDS, Kind.CERTIFICATE_EXPIRING)
#: `"ok": false` errors (Slack) that mean the credential is refused
JSON_OK_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})
JSON_OK_RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})


@dataclass
class CheckResult:
    integration_id: uuid.UUID
    status: str
    checked_at: datetime
    response_time_ms: int | None = None
    http_status: int | None = None
    error: str = ""
    #: the connection issue this result shows (`ConnectionIssue.Kind`), "" for none, with
    #: facts for it; recorded by `health.services` through `integrations.issues`
    issue_kind: str = ""
    issue_details: dict[str, Any] = field(default_factory=dict)
    #: the kinds this result looked for (shown or not); None: every kind a check can see
    #: when healthy, else only `issue_kind`
    observed_kinds: tuple[str, ...] | None = None
    secrets: list[str] = field(default_factory=list, repr=False)
    #: (user, password) pairs sent as Basic auth: `base64(user:password)` is hidden too
    basic_pairs: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.error = printable(redact(self.error, self.secrets, basic_pairs=self.basic_pairs))[:MAX_ERROR_LENGTH]
        self.secrets, self.basic_pairs = [], []  # not kept beyond redaction
        if self.observed_kinds is None:
            self.observed_kinds = HEALTH_KINDS if self.status == HEALTHY else ()
        if self.issue_kind and self.issue_kind not in self.observed_kinds:
            self.observed_kinds = (*self.observed_kinds, self.issue_kind)


PENDING_REASON = "pending until its credentials are complete"
#: the healthy result of a JWT integration without `health_check_url`: minted, nothing else called
MINTED_ONLY = "Token obtained; no endpoint was called: set config.health_check_url to check the provider's API too."


def not_connected_reason(integration: Integration) -> str | None:
    """Why an integration was never connected (nothing to check yet), or None if it was;
    a phrase to follow "Not connected yet: ".

    Never connected: still `pending` (an OAuth integration: never authorized), or no
    credentials at all (SAML excepted: its IdP metadata is config). Such an integration's
    health is `unknown` ("not connected"), not unhealthy: runs and "check now" leave it out
    and say why. Credentials that no key decrypts are not this case: they are a fault of a
    connected integration (unhealthy).
    """
    if not integration.credentials_readable:
        return None
    credentials = integration.credentials if isinstance(integration.credentials, dict) else {}
    if integration.auth_type == providers.OAUTH2:
        if not (credentials.get("access_token") or credentials.get("refresh_token")):
            # Pending: never authorized. Active without tokens: it was, and lost them (a
            # connection issue, `reauthorization_required`, found by the check).
            if integration.status == Integration.Status.PENDING:
                return "never authorized, it has no OAuth tokens: authorize it first"
        return None if integration.status != Integration.Status.PENDING else PENDING_REASON
    # SAML's metadata is config (credentials only for the bearer grant, validated on save)
    if not credentials and integration.auth_type != providers.SAML:
        return "it has no credentials: add them first"
    if integration.status == Integration.Status.PENDING:
        return PENDING_REASON
    return None


class _Stop(Exception):
    def __init__(self, message: str, kind: str = ""):
        super().__init__(message)
        self.kind = kind


class _NoCheck(_Stop):
    """No check is available: reported as degraded."""


class _CannotCheck(_Stop):
    """The integration cannot be checked (no credentials, no token): unhealthy."""


def _check_url(integration: Integration, provider: providers.Provider) -> str:
    template = provider.health_check.url
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    values = {}
    config = integration.config if isinstance(integration.config, dict) else {}
    for name in names:
        spec = provider.config_field(name)
        value = config.get(name, spec.default if spec else None)
        if not isinstance(value, str) or not value:
            if name == "health_check_url":
                raise _NoCheck("No health check available: set config.health_check_url.", Kind.CONFIG_INVALID)
            raise _CannotCheck(f"Cannot check: config.{name} is missing.", Kind.CONFIG_INVALID)
        values[name] = value
    return template.format(**values)


def _credential(integration: Integration, provider: providers.Provider) -> tuple[dict, tuple | None, list[str]]:
    """Headers, Basic auth and the secret values in play, for the check request."""
    credentials = integration.credentials if isinstance(integration.credentials, dict) else {}
    auth_type = integration.auth_type
    if auth_type == providers.OAUTH2:
        if not credentials.get("access_token") and not credentials.get("refresh_token"):
            # An integration still waiting for its first authorization has no issue yet.
            kind = "" if integration.status == Integration.Status.PENDING else Kind.REAUTHORIZATION_REQUIRED
            raise _CannotCheck("Missing credentials: the integration has not been authorized.", kind)
        refusal = shared_app_refusal(provider, auth_type, integration.config or {})
        if refusal:  # a token issued to the platform's OAuth app goes only to the provider's hosts
            raise _CannotCheck(refusal, Kind.CONFIG_INVALID)
        token = _access_token(integration)
        return {"Authorization": f"Bearer {token}"}, None, [token]
    if auth_type == providers.API_KEY:
        return _api_key_credential(credentials, provider.health_check.auth)
    if auth_type in (providers.JWT, providers.SAML):  # minted (SAML: by health/saml.py first)
        token = _access_token(integration)
        return {"Authorization": f"Bearer {token}"}, None, [token]
    raise _NoCheck(f"No health check available for {auth_type} integrations yet.")


def _access_token(integration: Integration) -> str:
    """A usable token (refreshed or minted first when it expires soon), else `_CannotCheck`
    naming the issue it shows. A refresh or mint that was tried recorded its own outcome
    (integrations/detectors.py): the check does not count it a second time."""
    attempts = integration.token_refresh_attempts
    minted = integration.auth_type in (providers.JWT, providers.SAML)
    refused = "Could not mint an access token" if minted else "Missing credentials"
    try:
        return get_access_token(integration)
    except UpstreamError as error:  # failed (recorded by the token path) or backing off after it
        verb = "mint" if minted else "get"
        raise _CannotCheck(f"Could not {verb} an access token: {error.message}") from None
    except ReauthorizationRequired as error:
        tried = integration.token_refresh_attempts != attempts  # then the token path recorded it
        kind = "" if tried else Kind.REAUTHORIZATION_REQUIRED
        raise _CannotCheck(f"{refused}: {error.message}", kind) from None
    except OAuthError as error:  # refused by the token endpoint: recorded by the token path
        raise _CannotCheck(f"{refused}: {error.message}") from None
    except ApplicationError as error:  # e.g. no OAuth client configured, a config the grant cannot use
        raise _CannotCheck(f"{refused}: {error.message}", Kind.CONFIG_INVALID) from None


def _api_key_credential(credentials: dict, how: providers.HealthCheckAuth) -> tuple[dict, tuple | None, list[str]]:
    """An API-key credential sent the way the catalogue entry's `health_check.auth` says."""
    if how == "basic":
        if not (credentials.get("username") and credentials.get("password")):
            raise _CannotCheck("Missing credentials: username and password.", Kind.CONFIG_INVALID)
        return {}, (credentials["username"], credentials["password"]), []
    if how == "query":
        raise _NoCheck("No health check available: the credential would go in query parameters.")
    key = credentials.get("api_key") or credentials.get("token")
    if not key:
        raise _CannotCheck("Missing credentials: api_key.", Kind.CONFIG_INVALID)
    if how == "basic_api_key":
        return {}, (key, "x"), []
    return {"Authorization": f"Bearer {key}"}, None, []


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "the provider"
    except ValueError:
        return "the provider"


def check_integration(integration: Integration) -> CheckResult:
    """Check one integration now; never raises (an unexpected failure is `unhealthy`)."""
    started = time.perf_counter()
    try:
        if integration.auth_type == providers.SAML:  # IdP metadata and certificates first: health/saml.py
            from .saml import check_saml

            return check_saml(integration, endpoint_check=_check_endpoint)
        return _check_endpoint(integration)
    finally:
        metrics.observe_health_check_duration(provider=integration.provider, seconds=time.perf_counter() - started)


def _check_endpoint(integration: Integration) -> CheckResult:
    """The provider's check endpoint called with the integration's credential."""
    secrets, pairs = integration_secrets(integration)

    def result(
        status: str, error: str = "", *, kind: str = "", saw: tuple[str, ...] | None = None, **kwargs: Any
    ) -> CheckResult:
        """`kind`: the issue shown; `saw`: the kinds looked for (see `CheckResult.observed_kinds`)."""
        if kind:
            kwargs["issue_kind"] = kind
        return CheckResult(
            integration.pk,
            status,
            timezone.now(),
            error=error,
            secrets=secrets,
            basic_pairs=pairs,
            observed_kinds=saw,
            **kwargs,
        )

    provider = integration.provider_info
    if provider is None:
        return result(UNHEALTHY, f"Unknown provider {integration.provider!r}.", kind=Kind.CONFIG_INVALID)
    problems = stored_config_errors(integration.provider, integration.auth_type, integration.config)
    if problems:  # e.g. a key the catalogue no longer has: the API would refuse to save it
        text = f"Invalid configuration: {describe_errors(problems)}"
        return result(UNHEALTHY, text, kind=Kind.CONFIG_INVALID, issue_details={"errors": problems})
    if not integration.credentials_readable:
        return result(UNHEALTHY, UNREADABLE_CREDENTIALS, kind=Kind.CONFIG_INVALID)
    try:
        if provider.health_check.success == "none":
            note = provider.health_check.note or "the provider offers no cheap authenticated check"
            raise _NoCheck(f"No health check available for {provider.display_name}: {note}.")
        try:
            url = _check_url(integration, provider)
        except _NoCheck:
            if integration.auth_type != providers.JWT:
                raise
            url = ""  # no endpoint to call: minting the token is the whole check
        headers, auth, in_play = _credential(integration, provider)
        secrets.extend(in_play)
        if auth is not None:
            pairs.append(auth)
    except _NoCheck as reason:  # the config validated: it is seen fine unless the reason says otherwise
        return result(DEGRADED, str(reason), kind=reason.kind, saw=(Kind.CONFIG_INVALID,))
    except _CannotCheck as reason:
        return result(UNHEALTHY, str(reason), kind=reason.kind, saw=(Kind.CONFIG_INVALID,))
    except Exception:  # a bug must not stop the run: report it, logged with its traceback
        logger.exception("Health check of integration %s could not start", integration.pk)
        return result(UNHEALTHY, "Internal error while preparing the check.", saw=())

    if not url:  # a JWT integration without health_check_url: the token endpoint accepted it
        return result(HEALTHY, MINTED_ONLY, saw=(Kind.CONFIG_INVALID,))

    host = _host(url)
    timeout = app_settings.timeout()
    started = time.perf_counter()
    try:
        response = get_session().request(
            provider.health_check.method,
            url,
            headers={"Accept": "application/json", **headers},
            auth=auth,
            timeout=(timeout, timeout),
            allow_redirects=False,
        )
        elapsed_ms = int((time.perf_counter() - started) * 1000)
    except requests.Timeout:
        text = f"Timed out after {timeout:g} s ({host})."
        return result(UNHEALTHY, text, kind=Kind.PROVIDER_UNAVAILABLE, saw=NO_ANSWER_KINDS)
    except InvalidIPAddress:
        text = f"Refused: {host} resolves to a private or reserved address."
        return result(UNHEALTHY, text, kind=Kind.CONFIG_INVALID, saw=())
    except ResponseTooLarge as error:  # read no further than the limit (decoded bytes)
        code = error.response.status_code if error.response is not None else None
        size = describe_size(error.limit)
        text = f"Answer too large: more than {size} once decoded ({host})."
        return result(UNHEALTHY, text, http_status=code, saw=(Kind.CONFIG_INVALID,))
    except requests.ConnectionError:
        return result(UNHEALTHY, f"Connection failed ({host}).", kind=Kind.PROVIDER_UNAVAILABLE, saw=NO_ANSWER_KINDS)
    except requests.RequestException as error:
        text = f"Request failed ({type(error).__name__}, {host})."
        return result(UNHEALTHY, text, kind=Kind.PROVIDER_UNAVAILABLE, saw=NO_ANSWER_KINDS)
    except Exception:
        logger.exception("Health check of integration %s failed unexpectedly", integration.pk)
        return result(UNHEALTHY, "Internal error during the check.", saw=())

    code = response.status_code
    timing: dict[str, Any] = {"response_time_ms": elapsed_ms, "http_status": code}
    if code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        text = f"Authentication rejected: HTTP {code} from {host}."
        return result(UNHEALTHY, text, kind=Kind.CREDENTIALS_REJECTED, saw=ANSWER_KINDS, **timing)
    if code == HTTPStatus.TOO_MANY_REQUESTS:
        retry_after = response.headers.get("Retry-After", "")
        details = {"retry_after": int(retry_after)} if retry_after.isdigit() else {}
        text = f"Rate limited: HTTP 429 from {host}."
        return result(DEGRADED, text, kind=Kind.RATE_LIMITED, saw=ANSWERED_KINDS, issue_details=details, **timing)
    if code >= 500:
        text = f"Provider error: HTTP {code} from {host}."
        return result(UNHEALTHY, text, kind=Kind.PROVIDER_UNAVAILABLE, saw=ANSWERED_KINDS, **timing)
    if not 200 <= code < 300:
        return result(UNHEALTHY, f"Unexpected answer: HTTP {code} from {host}.", saw=ANSWERED_KINDS, **timing)
    if provider.health_check.success == "json_ok":
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("ok") is not True:
            provider_error = body.get("error") if isinstance(body, dict) else None
            # Redacted before it is cut (a secret cut in half would no longer match), then
            # without control characters: the provider's words (a NUL would abort the run).
            why = (
                printable(redact(str(provider_error), secrets, basic_pairs=pairs))[:MAX_PROVIDER_ERROR]
                if provider_error
                else "no `ok: true` in the answer"
            )
            text = f"Provider reported a failure: {why}."
            code_text = provider_error if isinstance(provider_error, str) else ""
            if code_text in JSON_OK_AUTH_ERRORS:
                return result(UNHEALTHY, text, kind=Kind.CREDENTIALS_REJECTED, saw=ANSWER_KINDS, **timing)
            kind = Kind.RATE_LIMITED if code_text in JSON_OK_RATE_LIMITED else ""
            return result(UNHEALTHY, text, kind=kind, saw=ANSWERED_KINDS, **timing)
    slow = app_settings.slow_ms()
    if elapsed_ms > slow:
        text = f"Slow response: {elapsed_ms} ms (threshold {slow:g} ms)."
        return result(DEGRADED, text, saw=ANSWER_KINDS, **timing)
    return result(HEALTHY, **timing)
