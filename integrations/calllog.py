"""The call log: every provider call as one `ProviderCall` row, written in batches off the
caller's path.

`record(call_record)` (the client's `after_call` hook) only appends to an in-process buffer.
A background thread writes the buffer with `bulk_create` every
`INTEGRATIONS_CALL_LOG_FLUSH_SECONDS` (1 s), or sooner once `INTEGRATIONS_CALL_LOG_BATCH_SIZE`
records wait, and once more at exit. A failed write is logged and its records dropped: the
log never breaks or slows a call. A buffer over `INTEGRATIONS_CALL_LOG_MAX_BUFFER` (the
database down for long) drops the newest records, and says how many.

After a fork (django-q2 workers) the child starts with an empty buffer and its own thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
from typing import Any

from django.db import connection
from django.utils import timezone

from common.redaction import REDACTED, is_sensitive_name

from . import app_settings
from .client.hooks import CallRecord

logger = logging.getLogger(__name__)

MAX_PATH = 500
MAX_ENDPOINT = 300
ID = "{id}"
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{12,}")


def _is_id(segment: str) -> bool:
    """Whether a path segment names one object rather than a kind of resource: a number, a
    UUID, a long hex string, an e-mail address (Google calendar ids), or a long token with a
    digit in it (Graph, Gmail, DocuSign ids)."""
    if not segment:
        return False
    if segment.isdigit() or _UUID.fullmatch(segment) or "@" in segment:
        return True
    if _HEX.fullmatch(segment) and any(char.isdigit() for char in segment):
        return True
    return len(segment) >= 16 and any(char.isdigit() for char in segment)


#: query parameters that carry secrets although their names do not say so
SECRET_PARAMETERS = {"sig", "signature", "code", "apikey"}


def safe_path(path: str) -> str:
    """The path with the value of every query parameter whose name looks secret replaced
    (the client already removes them: this is a second line of defence)."""
    if "?" not in path:
        return path
    bare, query = path.split("?", 1)
    parameters = []
    for pair in query.split("&"):
        name, sep, _ = pair.partition("=")
        secret = is_sensitive_name(name) or name.lower() in SECRET_PARAMETERS
        parameters.append(f"{name}={REDACTED}" if secret and sep else pair)
    return f"{bare}?{'&'.join(parameters)}"


def endpoint_template(method: str, path: str) -> str:
    """ "GET /calendars/{id}/events" for "GET /calendars/42/events?pageToken=x": the query is
    dropped and ids are collapsed, so calls to one endpoint group together in usage."""
    bare = path.split("?", 1)[0].split("#", 1)[0]
    segments = [ID if _is_id(segment) else segment for segment in bare.split("/")]
    joined = "/".join(segments)
    # The client records paths relative to the API base ("employees/42"): shown from "/".
    return f"{method.upper()} {joined if joined.startswith('/') else '/' + joined}"[:MAX_ENDPOINT]


class CallLog:
    """The buffer and its writer thread (one per process: `call_log` below)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._dropped = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, record: CallRecord) -> None:
        if not app_settings.call_log_enabled():
            return
        row = {
            "integration_id": record.integration_id,
            "organization_id": record.organization_id,
            "method": record.method.upper()[:10],
            "path": safe_path(record.path)[:MAX_PATH],
            "endpoint": endpoint_template(record.method, record.path),
            "status": record.status,
            "duration_ms": float(record.duration_ms),
            "bytes": max(0, int(record.bytes)),
            "waited_ms": float(record.waited_ms),
            "error_kind": (record.error_kind or "")[:50],
            "created_at": timezone.now(),
        }
        with self._lock:
            if len(self._buffer) >= app_settings.call_log_max_buffer():
                self._dropped += 1
                return
            self._buffer.append(row)
            full = len(self._buffer) >= app_settings.call_log_batch_size()
        if app_settings.call_log_background():
            self._ensure_thread()
            if full:
                self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def discard(self) -> None:
        """Drop what is buffered (tests)."""
        with self._lock:
            self._buffer = []

    def flush(self) -> int:
        """Write what is buffered now; the number of rows written."""
        from .models import ProviderCall

        with self._lock:
            rows, self._buffer = self._buffer, []
            dropped, self._dropped = self._dropped, 0
        if dropped:
            logger.warning("Call log buffer full: %d provider call record(s) dropped.", dropped)
        written = 0
        size = app_settings.call_log_batch_size()
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            try:
                ProviderCall.objects.bulk_create([ProviderCall(**row) for row in batch])
            except Exception:
                logger.exception("Could not write %d provider call record(s); they are dropped.", len(batch))
            else:
                written += len(batch)
        return written

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="provider-call-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(app_settings.call_log_flush_seconds())
            self._wake.clear()
            if not self.pending():
                continue
            try:
                self.flush()
            except Exception:  # the thread must outlive anything
                logger.exception("The call log writer failed; it keeps running.")
            finally:
                # One short connection per flush (at most one a second): none is held while
                # idle, and one the database dropped is never reused.
                connection.close()


call_log = CallLog()


def record(record: CallRecord) -> None:
    """The `after_call` hook (integrations/client/hooks.py)."""
    call_log.record(record)


def flush() -> int:
    return call_log.flush()
