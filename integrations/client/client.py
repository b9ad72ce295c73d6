"""`IntegrationClient`: calls a provider's REST API with an integration's credentials.

Per call: the path is checked and joined to the provider's API base (`paths.py`,
`base.py`), the credential injected (`auth.py`), the rate-limit hook asked, the request
sent on the process's hardened session (`integrations.http`: timeouts, whole-request
deadline, SSRF pinning, capped reads, keep-alive), the call-log hook told, and the outcome
turned into a value or a typed error (`errors.py`) and fed to the connection issues
(`feedback.py`).

- A 401 with a refreshable token (OAuth2, JWT, SAML) refreshes once (forced) and sends
  the call once more, whatever the method: the provider did not act on it.
- Idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried after 429/502/503/504
  and connection failures, at most `INTEGRATIONS_CLIENT_RETRIES` times (default 2), after
  the answer's Retry-After (at most `INTEGRATIONS_CLIENT_MAX_RETRY_WAIT_SECONDS`) or an
  exponential backoff with full jitter. POST and PATCH are never retried. Read timeouts
  are not retried (the provider may still be working on it).
- `send(..., stream=True)` returns a successful answer with its body unread (the REST
  proxy streams it on); failed answers (and every answer of a provider that reports
  errors in its body, Slack) are still read capped, to find their error code.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from common import metrics
from common.exceptions import ApplicationError
from common.http import DEFAULT_MAX_RESPONSE_BYTES, InvalidIPAddress, ResponseTooLarge, read_capped
from common.redaction import redact
from integrations import app_settings, ratelimit
from integrations.http import get_session
from integrations.models import Integration
from integrations.oauth.tokens import token_needs_refresh

from . import feedback, hooks
from .auth import Credential, credential_for
from .base import ApiBase, resolve_base
from .errors import ProviderError, RateLimited, ReauthorizationRequired
from .paths import check_relative_path, fill_path, join, loggable_path, same_origin
from .ratelimits import retry_after_seconds

logger = logging.getLogger(__name__)

USER_AGENT = "integrations-client/1.0"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: provider error codes (in a 2xx `ok: false` body, Slack) that mean "this token is refused"
AUTH_ERROR_CODES = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})
MAX_PROVIDER_MESSAGE = 200
Kind = feedback.Kind


class IntegrationClient:
    """A provider API client bound to one integration (build it with `integration_client`)."""

    def __init__(self, integration: Integration):
        provider = integration.provider_info
        if provider is None:
            raise ApplicationError(f"Unknown provider {integration.provider!r}.")
        self.integration = integration
        self.provider = provider
        self._session = get_session(USER_AGENT)
        self._base: ApiBase | None = None
        self._credential: Credential | None = None

    # --- the public calls -------------------------------------------------------------

    def get(self, path: str, params: Any = None, **kwargs: Any) -> Any:
        return self.request("GET", path, params=params, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one call; the answer's JSON (None for an empty body, text if not JSON).
        Raises ProviderError/RateLimited for a failed answer, PathRefused for a bad path."""
        response = self.send(method, path, params=params, json=json, data=data, headers=headers)
        return _body(response)

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        raise_for_status: bool = True,
        stream: bool = False,
    ) -> requests.Response:
        """The call's `requests.Response` (body read, capped). With `raise_for_status=False`
        a provider's failed answer is returned rather than raised (the proxy passes it on);
        transport failures still raise ProviderError.

        With `stream=True` a successful answer's body is left unread: the caller reads it
        with a cap (`common.http.read_capped`, or `iter_content` counting the decoded bytes)
        and closes it. Its call-log `bytes` is then the answer's Content-Length (0 when it
        has none), recorded when the headers arrive. A failed answer is read capped at
        `INTEGRATIONS_MAX_RESPONSE_BYTES` as without streaming (`response.content` is set)."""
        url, log_path = self.url_for(path)
        return self._send(
            method.upper(),
            url,
            log_path=log_path,
            params=params,
            json=json,
            data=data,
            headers=headers,
            raise_for_status=raise_for_status,
            stream=stream,
        )

    def paginate(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        items_key: str | tuple[str, ...] | None = None,
        pages: bool = False,
        max_pages: int = 1000,
    ) -> Iterator[Any]:
        """Yield every ITEM of a list, page after page, in the provider's pagination style
        (`Provider.pagination`). The items are read from `items_key` (a key, or a tuple of
        keys for a nested one), else the catalogue's default (Google `items`/`messages`,
        Graph `value`, Workday `data`, LinkedIn `elements`); a provider whose key varies by
        endpoint (Slack, DocuSign, Dropbox Sign) needs `items_key`. With `pages=True` each
        page's whole JSON body is yielded instead. Pages are fetched lazily."""
        style = self.provider.pagination
        key = (items_key,) if isinstance(items_key, str) else (items_key or style.items_key)
        if not pages and not key:
            raise ValueError(f"{self.provider.display_name} lists have no common items key: pass items_key=.")
        query: dict[str, Any] = dict(params or {})
        if style.style == "offset":
            query.setdefault(style.limit_param, style.page_size)
            offset = int(query.get(style.param, 0) or 0)
        page_number = 0
        if style.style == "page":
            page_number = int(query.get(style.param, 1) or 1)
            query[style.param] = page_number
        url, log_path = self.url_for(path)
        send_query: dict[str, Any] | None = query
        for _ in range(max_pages):
            body = _body(self._send("GET", url, log_path=log_path, params=send_query))
            items = _dig(body, key) if key else None
            if pages:
                yield body
            else:
                yield from (items if isinstance(items, list) else [])
            if style.style == "token":
                token = _dig(body, style.next_field)
                if not token or not isinstance(token, str):
                    return
                query[style.param] = token
            elif style.style == "next_link":
                link = _dig(body, style.next_field)
                if not link or not isinstance(link, str):
                    return
                url, log_path = self._next_link(link)
                send_query = None  # the link carries its query
            elif style.style == "offset":
                count = len(items) if isinstance(items, list) else 0
                offset += count
                total = _dig(body, style.total_field)
                if count == 0 or (isinstance(total, int) and offset >= total):
                    return
                if not isinstance(total, int) and count < int(query[style.limit_param]):
                    return
                query[style.param] = offset
            elif style.style == "page":
                total_pages = _dig(body, style.total_field)
                if not isinstance(total_pages, int) or page_number >= total_pages:
                    return
                page_number += 1
                query[style.param] = page_number
            else:
                return
        raise ProviderError(f"Stopped after {max_pages} pages: the provider kept answering with more.")

    # --- URLs -------------------------------------------------------------------------

    @property
    def base(self) -> ApiBase:
        if self._base is None:
            self._base = resolve_base(self)
        return self._base

    @property
    def base_url(self) -> str:
        return self.base.url

    def url_for(self, path: str) -> tuple[str, str]:
        """The absolute URL of a relative `path`, and the path as logged."""
        relative = check_relative_path(path)
        relative = fill_path(relative, self.base.path_values)
        return join(self.base.url, relative), relative

    def _next_link(self, link: str) -> tuple[str, str]:
        """A next-page link from the provider: absolute on the base's origin, or relative
        to the base (DocuSign's `nextUri`). Anything else is not followed."""
        base = self.base.url
        if link.startswith("/") and not link.startswith("//"):
            parts = urlsplit(link)
            relative = check_relative_path(parts.path)
            url = join(base, relative) + (f"?{parts.query}" if parts.query else "")
            return url, relative + (f"?{parts.query}" if parts.query else "")
        if not same_origin(link, base):
            raise ProviderError(
                f"{self.provider.display_name} sent a next-page link to another host; it is not followed.",
                kind="refused",
            )
        parts = urlsplit(link)
        base_path = urlsplit(base).path.rstrip("/")
        relative = parts.path[len(base_path) :].lstrip("/") if parts.path.startswith(base_path) else parts.path
        return link, relative + (f"?{parts.query}" if parts.query else "")

    # --- sending ----------------------------------------------------------------------

    def credential(self, *, force_refresh: bool = False) -> Credential:
        """The credential to send; a token is renewed when it nears expiry, so a client
        kept for a long job never sends a stale one."""
        stale = self._credential is not None and self._credential.refreshable and token_needs_refresh(self.integration)
        if self._credential is None or force_refresh or stale:
            try:
                self._credential = credential_for(self.integration, self.provider, force_refresh=force_refresh)
            except ReauthorizationRequired as error:
                feedback.detected(self.integration, Kind.CREDENTIALS_REJECTED, error.message)
                raise
        return self._credential

    def _send(
        self,
        method: str,
        url: str,
        *,
        log_path: str,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        raise_for_status: bool = True,
        stream: bool = False,
    ) -> requests.Response:
        credential = self.credential()
        retries_left = app_settings.client_retries() if method in IDEMPOTENT else 0
        refreshed = False
        attempt = 0
        logged = loggable_path(log_path, params)
        plain_path = urlsplit(log_path).path
        while True:
            attempt += 1
            try:
                waited_ms = hooks.before_call(self.integration, method, plain_path)
            except ratelimit.RateLimitExceeded as refused:  # our own shared limit: nothing was sent
                metrics.record_rate_limited(provider=self.integration.provider)
                raise RateLimited(
                    f"This integration's rate limit is reached: retry in {refused.retry_after:.1f} s.",
                    retry_after=refused.retry_after,
                    status=None,
                ) from None
            started = time.perf_counter()
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers={"Accept": "application/json", **(headers or {}), **credential.headers},
                    auth=credential.auth,
                    allow_redirects=False,
                    stream=stream,
                )
                if stream and (not 200 <= response.status_code < 300 or self._errors_in_body):
                    # its error code (or Slack's `ok`) is in the body: read it, capped as usual
                    read_capped(response, getattr(self._session, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))
            except requests.RequestException as error:
                kind, message = self._transport_failure(error)
                self._record(method, logged, None, started, 0, waited_ms, kind, attempt)
                retryable = isinstance(error, requests.ConnectionError) and not isinstance(error, ResponseTooLarge)
                if retryable and retries_left > 0:
                    retries_left -= 1
                    _sleep(_backoff(attempt))
                    continue
                if kind in {"timeout", "connection"}:
                    feedback.detected(self.integration, Kind.PROVIDER_UNAVAILABLE, message)
                raise ProviderError(message, kind=kind) from None
            status = response.status_code
            _limit_feedback(self.integration, response)
            code = _error_code(response) if not 200 <= status < 300 or self._errors_in_body else ""
            auth_refused = status == 401 or (code in AUTH_ERROR_CODES and self._errors_in_body)
            kind = _error_kind(status, code, self._errors_in_body, auth_refused)
            self._record(method, logged, status, started, _size(response), waited_ms, kind, attempt)
            if auth_refused and credential.refreshable and not refreshed:
                refreshed = True
                try:
                    credential = self.credential(force_refresh=True)
                except ReauthorizationRequired:
                    raise
                except ApplicationError:  # no refresh token, or its endpoint failing: the 401 stands
                    return self._outcome(response, code, kind, raise_for_status=raise_for_status)
                continue
            if status in RETRY_STATUSES and retries_left > 0:
                wait = retry_after_seconds(response.headers)
                if wait is None:
                    wait = _backoff(attempt)
                if wait <= app_settings.client_max_retry_wait():
                    retries_left -= 1
                    _sleep(wait)
                    continue
            return self._outcome(response, code, kind, raise_for_status=raise_for_status)

    @property
    def _errors_in_body(self) -> bool:
        # The API reports failures as `ok: false` in a 2xx body (Slack), like its check.
        return self.provider.health_check.success == "json_ok"

    def _outcome(self, response: requests.Response, code: str, kind: str, *, raise_for_status: bool):
        status = response.status_code
        name = self.provider.display_name
        if not kind:
            feedback.succeeded(self.integration)
            return response
        message = f"{name} answered HTTP {status}" + (f" ({code})" if code else "")
        detail = self._redacted(_error_message(response))
        if detail:
            message += f": {detail}"
        if kind == "credentials_rejected":
            feedback.detected(self.integration, Kind.CREDENTIALS_REJECTED, f"{name} rejected the credentials.")
        elif kind == "rate_limited":
            retry_after = retry_after_seconds(response.headers)
            feedback.detected(
                self.integration, Kind.RATE_LIMITED, f"{name} is rate limiting.", {"retry_after": retry_after}
            )
            if raise_for_status:
                metrics.record_rate_limited(provider=self.integration.provider)
                raise RateLimited(message, retry_after=retry_after, status=status, code=code)
        elif kind == "provider_unavailable":
            feedback.detected(self.integration, Kind.PROVIDER_UNAVAILABLE, f"{name} answered HTTP {status}.")
        if raise_for_status:
            raise ProviderError(message, status=status, code=code, kind=kind)
        return response

    def _transport_failure(self, error: requests.RequestException) -> tuple[str, str]:
        host = urlsplit(self.base.url).hostname if self._base else "the provider"
        if isinstance(error, ResponseTooLarge):
            return "too_large", f"The answer from {host} is larger than the limit ({error.limit} bytes decoded)."
        if isinstance(error, InvalidIPAddress):
            return "refused", f"Refused: {host} resolves to a private or reserved address."
        if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.ConnectTimeout):
            return "connection", f"Connection to {host} failed."
        if isinstance(error, requests.Timeout):
            return "timeout", f"No answer from {host} in time."
        return "connection", f"Request to {host} failed ({type(error).__name__})."

    def _redacted(self, text: str) -> str:
        if not text:
            return ""
        secrets = list(self._credential.secrets) if self._credential else []
        secrets += [v for v in (self.integration.credentials or {}).values() if isinstance(v, str)]
        pairs = [self._credential.auth] if self._credential and self._credential.auth else []
        return redact(text, secrets, basic_pairs=pairs)[:MAX_PROVIDER_MESSAGE]

    def _record(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        size: int,
        waited_ms: float,
        error_kind: str,
        attempt: int,
    ) -> None:
        metrics.record_provider_call(provider=self.integration.provider, status=status, waited_seconds=waited_ms / 1000)
        hooks.after_call(
            hooks.CallRecord(
                integration_id=self.integration.pk,
                organization_id=self.integration.organization_id,
                method=method,
                path=path,
                status=status,
                duration_ms=int((time.perf_counter() - started) * 1000),
                bytes=size,
                waited_ms=waited_ms,
                error_kind=error_kind,
                attempt=attempt,
            )
        )


def _limit_feedback(integration: Integration, response: requests.Response) -> None:
    """The provider's own word on its limits (Retry-After, RateLimit headers) pauses the
    shared buckets (integrations/ratelimit.py); a failure to record it never fails the call."""
    try:
        ratelimit.feedback(integration, response.headers, response.status_code)
    except Exception:
        logger.warning("Rate-limit feedback for integration %s failed", integration.pk, exc_info=True)


def integration_client(integration: Integration) -> IntegrationClient:
    """A client for the integration's provider API: `.get/.post/.put/.patch/.delete/.paginate`."""
    return IntegrationClient(integration)


# --- helpers -------------------------------------------------------------------------------


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def _backoff(attempt: int) -> float:
    """Full jitter: a random wait up to base * 2^(attempt-1)."""
    base = app_settings.client_retry_backoff_ms() / 1000
    return random.uniform(0, base * 2 ** (attempt - 1))


def _dig(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _size(response: requests.Response) -> int:
    """The call log's bytes: the body read, else (streamed, still unread) its Content-Length."""
    if getattr(response, "_content_consumed", True) or response.raw is None:
        return len(response.content or b"")
    try:
        return max(0, int(response.headers.get("Content-Length", "")))
    except ValueError:
        return 0


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _body(response: requests.Response) -> Any:
    if not response.content:
        return None
    parsed = _json(response)
    return parsed if parsed is not None else response.text


def _error_kind(status: int, code: str, errors_in_body: bool, auth_refused: bool) -> str:
    if auth_refused:
        return "credentials_rejected"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "provider_unavailable"
    if not 200 <= status < 300:
        return "provider_error"
    if errors_in_body and code:
        return "provider_error"
    return ""


def _short(value: Any) -> str:
    return value[:100] if isinstance(value, str) else (str(value) if isinstance(value, int) else "")


def _error_code(response: requests.Response) -> str:
    """The provider's short error code: Slack `error` (with `ok: false`), OAuth `error`,
    Graph/Google `error.code`/`error.status`, DocuSign `errorCode`, Dropbox Sign `error.error_name`."""
    body = _json(response)
    if not isinstance(body, dict):
        return ""
    if body.get("ok") is True:
        return ""
    error = body.get("error")
    if isinstance(error, str):
        return _short(error)
    if isinstance(error, dict):
        for name in ("status", "code", "error_name"):
            if error.get(name):
                return _short(error[name])
    if body.get("ok") is False:
        return "not_ok"
    return _short(body.get("errorCode") or body.get("code") or "")


def _error_message(response: requests.Response) -> str:
    body = _json(response)
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        text = error.get("message") or error.get("error_msg") or ""
    else:
        text = body.get("error_description") or body.get("message") or ""
    return text if isinstance(text, str) else ""
