"""Structured logs: the request, organization, event and delivery a log line is about.

- `log_context(...)` binds values (contextvars) for a block; `ContextFilter` copies them
  onto every record as `request_id`, `organization`, `event_id` and `delivery_id`.
- `RequestIdMiddleware` gives each HTTP request an id (a sane incoming `X-Request-ID` is
  kept) and returns it in the `X-Request-ID` response header.
- `TextFormatter` (`LOG_FORMAT=text`, the default) and `JsonFormatter` (`LOG_FORMAT=json`,
  python-json-logger) redact messages and tracebacks: values under sensitive names
  (`common.redaction.redact_assignments`) and the secrets bound with `log_secrets(...)`.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from .redaction import REDACTED, is_sensitive_name, redact, redact_assignments

CONTEXT_FIELDS = ("request_id", "organization", "event_id", "delivery_id")
_context: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"log_{name}", default=None) for name in CONTEXT_FIELDS
}
_secrets: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("log_secrets", default=())

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
#: an incoming request id is kept only when it looks like one (no spaces, quotes, controls)
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


def current_context() -> dict[str, str | None]:
    return {name: var.get() for name, var in _context.items()}


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind `request_id`, `organization`, `event_id` and/or `delivery_id` for the block."""
    tokens = [
        (_context[name], _context[name].set(None if value is None else str(value))) for name, value in values.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_organization(slug: str) -> None:
    """The organization the current request acts for, once it is known (organizations/access.py);
    the next request's `start_request` clears it."""
    _context["organization"].set(slug)


@contextmanager
def log_secrets(values: Iterable[Any]) -> Iterator[None]:
    """Secret values (e.g. a webhook's custom header values) no log line of the block may show."""
    token = _secrets.set((*_secrets.get(), *(v for v in values if isinstance(v, str))))
    try:
        yield
    finally:
        _secrets.reset(token)


class delivery_context:
    """`log_context(event_id=…, delivery_id=…)` plus `log_secrets(secrets)` in one cheap
    step: the webhook engine enters it around every attempt."""

    __slots__ = ("_tokens", "delivery_id", "event_id", "secrets")

    def __init__(self, event_id: Any, delivery_id: Any, secrets: Iterable[str] = ()) -> None:
        self.event_id, self.delivery_id, self.secrets = str(event_id), str(delivery_id), tuple(secrets)

    def __enter__(self) -> None:
        tokens: list[tuple[contextvars.ContextVar, contextvars.Token]] = [
            (_context["event_id"], _context["event_id"].set(self.event_id)),
            (_context["delivery_id"], _context["delivery_id"].set(self.delivery_id)),
        ]
        if self.secrets:
            tokens.append((_secrets, _secrets.set((*_secrets.get(), *self.secrets))))
        self._tokens = tokens

    def __exit__(self, *exc: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)


def scrub(text: str) -> str:
    """A log text without the bound secrets nor values under sensitive names."""
    return redact_assignments(redact(text, _secrets.get()))


class ContextFilter(logging.Filter):
    """Adds the bound context to every record (None when not known); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message [request_id=… delivery_id=…]`, redacted."""

    def __init__(self, fmt: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        bound = [f"{name}={value}" for name in CONTEXT_FIELDS if (value := getattr(record, name, None)) is not None]
        return scrub(f"{line} [{' '.join(bound)}]" if bound else line)

    def formatException(self, ei: Any) -> str:
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return scrub(super().formatStack(stack_info))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, the context fields and
    any `extra`; string values are redacted and sensitive-named extras masked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", ["levelname", "name", "message", *CONTEXT_FIELDS])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key, value in log_data.items():
            if key not in CONTEXT_FIELDS and is_sensitive_name(key):
                log_data[key] = REDACTED
            elif isinstance(value, str):
                log_data[key] = scrub(value)
        return log_data


def request_id_for(incoming: str | None) -> str:
    """The incoming id when it is sane (REQUEST_ID_PATTERN), else a new one."""
    if incoming and REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def start_request(request_id: str) -> None:
    """Bind a new request's id and clear what the previous request of this thread bound.
    Not reset when the response leaves the middleware: Django logs a 4xx/5xx response
    (`django.request`) after the middleware chain, and that line belongs to the request."""
    _context["request_id"].set(request_id)
    for name in ("organization", "event_id", "delivery_id"):
        _context[name].set(None)


class RequestIdMiddleware:
    """First in MIDDLEWARE: binds a request id (and clears the organization) for the request,
    and answers with it in `X-Request-ID`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # META directly: `request.headers` would build a mapping of every header first.
        request_id = request_id_for(request.META.get(_REQUEST_ID_META))
        request.request_id = request_id  # type: ignore[attr-defined]
        start_request(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response
