"""Provider calls whose permission failures become `missing_scopes` connection issues.

`call(client, method, path, ..., scopes=[...])` sends through the client like
`client.request` (base URL, credential, refresh, retries, limits, call log and the
client's own issue feedback all apply) and returns the answer's JSON, but reads a failed
answer itself first:

- a permission refusal is reported as a `missing_scopes` issue (`details.missing_scopes`:
  the scopes the operation needs, or what the provider says it needed) and raised as
  `MissingScopes` (409: reconnect granting them). Refusals recognised: Google 403 with
  reason `insufficientPermissions` (or `ACCESS_TOKEN_SCOPE_INSUFFICIENT`, or
  `WWW-Authenticate: ... insufficient_scope`), Graph 403 `Authorization_RequestDenied` or
  `ErrorAccessDenied`, Slack `{"ok": false, "error": "missing_scope"}` (its `needed`);
- Slack's `ratelimited` in a 200 body is `RateLimited`, like a 429;
- anything else failed is the client's `ProviderError` (or `RateLimited`), unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

from integrations.models import ConnectionIssue, Integration

from . import feedback
from .client import IntegrationClient, _error_code, _error_kind, _error_message, _json
from .errors import ProviderError, RateLimited
from .ratelimits import retry_after_seconds

GOOGLE_SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
GRAPH_PERMISSION_CODES = frozenset({"Authorization_RequestDenied", "ErrorAccessDenied"})
SLACK_SCOPE_ERRORS = frozenset({"missing_scope", "no_permission"})
#: inside `reported_after()`: refusals are reported when it exits (after the rollback)
_deferred: ContextVar[bool] = ContextVar("missing_scopes_deferred", default=False)


class MissingScopes(ProviderError):
    """The provider refused the call for want of a permission: reconnect granting the
    scopes in `missing_scopes` (a `missing_scopes` issue is open)."""

    status_code = HTTPStatus.CONFLICT

    def __init__(
        self, message: str, *, status: int | None, code: str, missing_scopes: list[str], integration: Integration
    ):
        super().__init__(message, status=status, code=code, kind="provider_error")
        self.missing_scopes = missing_scopes
        self.integration = integration
        self.extra["error_kind"] = "missing_scopes"
        self.extra["missing_scopes"] = missing_scopes

    def report(self) -> None:
        _report(self.integration, self.integration.get_provider_display(), self.missing_scopes)


@contextmanager
def reported_after() -> Iterator[None]:
    """Around a transaction that calls providers: the `missing_scopes` issue of a refusal
    is written after the transaction rolled back, so it is kept."""
    token = _deferred.set(True)
    refusal: MissingScopes | None = None
    try:
        yield
    except MissingScopes as error:
        refusal = error
        raise
    finally:
        _deferred.reset(token)
        if refusal is not None:
            refusal.report()


def call(
    client: IntegrationClient,
    method: str,
    path: str,
    *,
    params: Any = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
    scopes: list[str] | tuple[str, ...] = (),
) -> Any:
    """The answer's JSON (None when empty); failures raised as described above."""
    response = client.send(method, path, params=params, json=json, headers=headers, raise_for_status=False)
    status = response.status_code
    body = _json(response)
    slack_failed = client._errors_in_body and isinstance(body, dict) and body.get("ok") is False
    if 200 <= status < 300 and not slack_failed:
        return body if response.content else None
    code = _error_code(response)
    name = client.provider.display_name
    detail = client._redacted(_error_message(response))
    message = f"{name} answered HTTP {status}" + (f" ({code})" if code else "") + (f": {detail}" if detail else "")
    needed = _missing(status, body, response.headers.get("WWW-Authenticate", ""), list(scopes))
    if needed is not None:
        refusal = MissingScopes(
            f"{name} refused the call: the connection lacks a permission"
            + (f" ({', '.join(needed)})" if needed else "")
            + ". Reconnect the integration and grant it.",
            status=status,
            code=code,
            missing_scopes=needed,
            integration=client.integration,
        )
        if not _deferred.get():
            _report(client.integration, name, needed)
        raise refusal
    if status == HTTPStatus.TOO_MANY_REQUESTS or code == "ratelimited":
        raise RateLimited(message, retry_after=retry_after_seconds(response.headers), status=status, code=code)
    kind = _error_kind(status, code, client._errors_in_body, status == HTTPStatus.UNAUTHORIZED)
    raise ProviderError(message, status=status, code=code, kind=kind or "provider_error")


def _missing(status: int, body: Any, authenticate: str, scopes: list[str]) -> list[str] | None:
    """The scopes wanted when the answer is a permission refusal, else None."""
    if not isinstance(body, dict):
        return scopes if status == HTTPStatus.FORBIDDEN and "insufficient_scope" in authenticate else None
    if body.get("ok") is False and body.get("error") in SLACK_SCOPE_ERRORS:
        needed = body.get("needed")
        return [s for s in needed.split(",") if s] if isinstance(needed, str) and needed else scopes
    if status != HTTPStatus.FORBIDDEN:
        return None
    if "insufficient_scope" in authenticate:
        return scopes
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    if error.get("code") in GRAPH_PERMISSION_CODES:
        return scopes
    reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
    reasons |= {d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)}
    return scopes if reasons & GOOGLE_SCOPE_REASONS else None


def _report(integration: Integration, name: str, needed: list[str]) -> None:
    from integrations.detectors import reconnect_url

    feedback.detected(
        integration,
        ConnectionIssue.Kind.MISSING_SCOPES,
        f"{name} refused a call for want of a permission"
        + (f"; needed: {', '.join(needed)}" if needed else "")
        + ". Reconnect and grant it.",
        {"missing_scopes": needed, "reconnect_url": reconnect_url(integration)},
    )
