"""`/api/integrations/{id}/proxy/{path}`: a provider's REST API, for API consumers.

The request goes through `integrations.client` (so the base URL, credential, refresh on
401, retries of idempotent methods, rate-limit and call-log hooks and issue feedback are
the platform's own), to the provider's API base only:

- `{path}` is relative to the base; a URL, `//host`, backslashes, control characters or
  `.`/`..` segments (also percent-encoded) are a 400 before anything is sent.
- Only a few request headers are forwarded (`FORWARDED_HEADERS`: content negotiation,
  conditional requests, `Prefer`); the caller's `Authorization`, cookies, `Host`,
  hop-by-hop and `X-Forwarded-*` headers never are. The integration's credential is added.
- The query and the body pass through as sent, with their content type.
- The answer's status and body pass through, the body streamed in chunks as it arrives
  (never held whole) and capped at `INTEGRATIONS_PROXY_MAX_RESPONSE_BYTES` decoded bytes:
  a Content-Length over the cap is a JSON 502 before anything is sent; a body without
  one (or compressed: gzip bombs count decoded) is cut at the cap, the upstream
  connection closed and the stream ended with an error, so the server drops our
  connection rather than finishing a truncated 200. A failed answer (4xx) is read whole,
  capped at `INTEGRATIONS_MAX_RESPONSE_BYTES`, as the client reads it for its error code.
  Headers: `SAFE_RESPONSE_HEADERS` only: no `Set-Cookie`, no `Link`/`Location` (they name
  the provider's URLs, not ours), no `Content-Encoding` (the body is decoded); the
  provider's `Content-Length` only when the body passes unmodified (not decoded). A
  provider 5xx becomes a JSON 502 (with `provider_status`), and so does a 401 after the
  refresh: passed through, it would read as the caller's own key being refused.
- Errors of ours are JSON: 400 bad path or an integration that cannot call, 403 a
  read-only key or viewer writing, 404 another organization's integration, 409 the
  integration needs re-authorization, 413 a body over `DATA_UPLOAD_MAX_MEMORY_SIZE`,
  429 rate limited (`Retry-After`), 502 the provider unreachable, refused or too large.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from http import HTTPStatus

import requests
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from common.api.exceptions import problem
from common.api.schema import ERROR
from common.http import READ_CHUNK, ResponseTooLarge, describe_size
from integrations import app_settings
from integrations.client import ProviderError, RateLimited, ReauthorizationRequired, integration_client
from integrations.models import Integration
from integrations.selectors import integration_list
from organizations.tenancy import OrganizationScopedMixin

logger = logging.getLogger(__name__)

FORWARDED_HEADERS = (
    "Accept",
    "Accept-Language",
    "Content-Type",
    "Content-Language",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Prefer",
    "ConsistencyLevel",
    "Idempotency-Key",
)
SAFE_RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Language",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Expires",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: a header value we send on: visible ASCII (and obs-text) with inner spaces/tabs, no CR/LF/NUL
HEADER_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")


class _AnyAccept(BaseContentNegotiation):
    """The caller's Accept is for the provider: our own (error) answers are always JSON."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _error(status: int, detail: str, **extra) -> Response:
    """This API's own error (the one shape, common/api/exceptions.py), never the provider's."""
    return Response(problem(status_code=status, detail=detail, **extra), status=status)


PATH = OpenApiParameter(
    "path",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Path relative to the provider's API base URL, e.g. `users/me/calendarList` (Google Calendar).",
)
#: a 2xx-4xx may be the provider's answer passed through (any body) or, for 4xx, our own
#: `{"detail"}` error; only 401 and 502 are always ours (a provider's 401 and 5xx become 502)
_PASSED = "the provider's answer passed through, or this API's JSON error ({\"detail\", ...}): "


def _passed(code: int | str, description: str) -> dict:
    """A response whose body is any JSON, or anything else the provider sent."""
    answer = OpenApiResponse(OpenApiTypes.ANY, description=description)
    return {(code, "application/json"): answer, (code, "*/*"): answer}


def proxy_schema(method: str, summary: str):
    """The proxy's schema for one method: each operation has its own summary (the rest is shared)."""
    return extend_schema(
        summary=summary,
        description=f"{method} `{{path}}` relative to the provider's API base URL; query, body and content type "
        "pass through (docs/API.md, REST proxy).",
        parameters=[PATH],
        request={"*/*": OpenApiTypes.BINARY} if method in WITH_BODY else None,
        responses={
            **_passed(200, "The provider's answer, passed through"),
            **_passed(400, _PASSED + "a refused path or header"),
            **_passed(403, _PASSED + "a read-only key writing"),
            **_passed(404, _PASSED + "another organization's integration"),
            **_passed(409, _PASSED + "re-authorization required"),
            **_passed(413, _PASSED + "the request body is too large"),
            **_passed(429, _PASSED + "rate limited (Retry-After)"),
            **_passed("default", "Any other 2xx-4xx status of the provider's answer, passed through"),
            502: ERROR,
        },
    )


class IntegrationProxyView(OrganizationScopedMixin, GenericAPIView):
    queryset = Integration.objects.all()
    parser_classes = []  # the body is forwarded as bytes, never parsed
    content_negotiation_class = _AnyAccept
    http_method_names = ["get", "post", "put", "patch", "delete"]
    pagination_class = None
    filter_backends = []

    def scoped_queryset(self, organization):
        return integration_list(organization=organization)

    @proxy_schema("GET", "Read from the provider's REST API through the proxy")
    def get(self, request, pk=None, path=""):
        return self._forward(request, path)

    @proxy_schema("POST", "Create at the provider through the proxy (POST)")
    def post(self, request, pk=None, path=""):
        return self._forward(request, path)

    @proxy_schema("PUT", "Replace at the provider through the proxy (PUT)")
    def put(self, request, pk=None, path=""):
        return self._forward(request, path)

    @proxy_schema("PATCH", "Update at the provider through the proxy (PATCH)")
    def patch(self, request, pk=None, path=""):
        return self._forward(request, path)

    @proxy_schema("DELETE", "Delete at the provider through the proxy")
    def delete(self, request, pk=None, path=""):
        return self._forward(request, path)

    def _forward(self, request, path: str):
        integration = self.get_object()
        method = request.method.upper()
        try:
            body = request._request.body if method in WITH_BODY else None
        except RequestDataTooBig:
            return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "The request body is too large.")
        headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
        for name, value in headers.items():
            if not HEADER_VALUE.fullmatch(value):
                return _error(HTTPStatus.BAD_REQUEST, f"The {name} header has characters that cannot be forwarded.")
        params = [(name, value) for name, values in request.query_params.lists() for value in values]
        client = integration_client(integration)
        try:
            answer = client.send(
                method,
                path,
                params=params or None,
                data=body or None,
                headers=headers,
                raise_for_status=False,
                stream=True,
            )
        except RateLimited as error:
            response = _error(HTTPStatus.TOO_MANY_REQUESTS, error.message, **error.extra)
            if error.retry_after is not None:
                response["Retry-After"] = str(max(1, round(error.retry_after)))
            return response
        except ReauthorizationRequired as error:
            return _error(HTTPStatus.CONFLICT, error.message, error_kind="reauthorization_required")
        except ProviderError as error:
            return _error(HTTPStatus.BAD_GATEWAY, error.message, error_kind=error.kind, **error.extra)
        try:
            response = self._answer(client, answer)
        except BaseException:
            answer.close()
            raise
        if not isinstance(response, StreamingHttpResponse):  # else closed when the stream ends
            answer.close()
        return response

    def _answer(self, client, answer: requests.Response):
        if answer.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:  # the gateway's failure, not ours
            return _error(
                HTTPStatus.BAD_GATEWAY,
                f"{client.provider.display_name} answered HTTP {answer.status_code}.",
                error_kind="provider_unavailable",
                provider_status=answer.status_code,
            )
        if answer.status_code == HTTPStatus.UNAUTHORIZED:
            return _error(
                HTTPStatus.BAD_GATEWAY,
                f"{client.provider.display_name} rejected the integration's credentials.",
                error_kind="credentials_rejected",
                provider_status=answer.status_code,
            )
        cap = app_settings.proxy_max_response_bytes()
        length = _content_length(answer)
        if length is not None and length > cap:  # known too large: say so before sending anything
            return _error(
                HTTPStatus.BAD_GATEWAY,
                f"The answer from {client.provider.display_name} is larger than the proxy's limit "
                f"({describe_size(cap)}).",
                error_kind="too_large",
                provider_status=answer.status_code,
            )
        response: HttpResponse | StreamingHttpResponse
        if _read(answer):  # a failed answer, read (capped) by the client already
            response = HttpResponse(answer.content, status=answer.status_code)
        else:
            chunks = _stream(answer, cap, client.provider.display_name)
            response = StreamingHttpResponse(chunks, status=answer.status_code)
            encoding = answer.headers.get("Content-Encoding", "identity").strip().lower()
            if length is not None and encoding == "identity":  # passed on byte for byte
                response["Content-Length"] = str(length)
        for name in SAFE_RESPONSE_HEADERS:
            value = answer.headers.get(name)
            if value and "\r" not in value and "\n" not in value:
                response[name] = value
        if "Content-Type" not in answer.headers:
            del response["Content-Type"]
        return response


def _read(answer: requests.Response) -> bool:
    return bool(getattr(answer, "_content_consumed", True)) or answer.raw is None


def _content_length(answer: requests.Response) -> int | None:
    """The provider's Content-Length (of the body as sent, before decoding), if valid."""
    value = answer.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _stream(answer: requests.Response, cap: int, provider: str) -> Iterator[bytes]:
    """The provider's body, decoded, in chunks of at most `READ_CHUNK`, up to `cap` bytes.

    Past the cap the upstream connection is closed and `ResponseTooLarge` raised: the WSGI
    server then drops the caller's connection without ending the body, so a cut answer is
    seen as incomplete, never as a whole 200. The answer is closed however the stream ends
    (the caller going away included: Django closes the iterator)."""
    size = 0
    try:
        for chunk in answer.iter_content(READ_CHUNK):  # decoded, at most a chunk inflated at a time
            size += len(chunk)
            if size > cap:
                if cap - (size - len(chunk)) > 0:
                    yield chunk[: cap - (size - len(chunk))]
                logger.warning("Proxy answer from %s cut at %d bytes (decoded)", provider, cap)
                raise ResponseTooLarge(cap)
            yield chunk
    finally:
        answer.close()
