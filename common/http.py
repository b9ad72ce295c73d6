"""Hardened outbound HTTP sessions, shared by every app that calls user-supplied URLs.

requests-hardened checks the resolved address at connect time and pins the connection
to it (DNS rebinding cannot swap in a private address), redirects are never followed,
and every request has a default timeout and a whole-request deadline. Bodies are read in
chunks and capped in *decoded* bytes (`read_capped`): a small gzip answer that inflates to
gigabytes cannot exhaust a worker's memory. Environment proxies, `.netrc` and cookies are
off, so nothing of the host or of one receiver leaks into another request. Sessions are
pooled (keep-alive) and cached per process, keyed by what configures them.
"""

from __future__ import annotations

import heapq
import http.cookiejar
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

import requests
from requests.adapters import HTTPAdapter
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from common.ssrf import is_public_address

__all__ = [
    "DeadlineExceeded",
    "InvalidIPAddress",
    "ResponseTooLarge",
    "cached_session",
    "hardened_session",
    "read_capped",
    "request_deadline",
]

POOL_CONNECTIONS = 16
#: the decoded bytes a hardened session reads of one answer unless its maker says otherwise
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
READ_CHUNK = 16 * 1024

_lock = threading.Lock()
_sessions: dict[Hashable, requests.Session] = {}


# --- a wall-clock deadline per request ----------------------------------------------------
# A timeout bounds each socket read, not the request: a server that trickles a byte every
# few seconds would hold a request (and a worker) indefinitely. Within `request_deadline()`
# every connection a request uses is watched, and shut down when the deadline passes.


class DeadlineExceeded(requests.Timeout):
    pass


class _Scope:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.connections: list[HTTPConnection] = []
        self.expired = False
        self.done = False


class _Watchdog:
    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Scope]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, scope: _Scope) -> None:
        with self._cond:
            # Wake the thread only when this deadline comes first (with one timeout for all
            # requests, deadlines arrive in order: no wake-up, no context switch per request).
            earliest = not self._heap or scope.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (scope.deadline, next(self._counter), scope))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-deadline", daemon=True)
                self._thread.start()
            elif earliest:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(60)
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, scope = heapq.heappop(self._heap)
                scope.expired = True
                connections = list(scope.connections)
            for conn in connections:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


_watchdog = _Watchdog()
_local = threading.local()


@contextmanager
def request_deadline(seconds: float) -> Iterator[_Scope]:
    """Requests made by this thread inside the block are cut off after `seconds` in all."""
    outer = getattr(_local, "scope", None)
    if outer is not None:  # an enclosing deadline already applies
        yield outer
        return
    scope = _Scope(seconds)
    _local.scope = scope
    _watchdog.add(scope)
    try:
        yield scope
    except requests.RequestException as exc:
        if scope.expired:
            raise DeadlineExceeded(f"No complete answer within {seconds:g} s.") from exc
        raise
    finally:
        scope.done = True
        _local.scope = None


#: A request's head and body, up to this many bytes in all, go out in one write instead of
#: urllib3's two (head, then body): one segment on the wire instead of two (the sockets are
#: TCP_NODELAY), one system call, and one wake-up of the receiver, as the standard library's
#: `http.client` does for a bytes body. Larger bodies are written as they come.
COALESCE_BYTES = 64 * 1024


class _WatchedConnectionMixin(HTTPConnection):
    _held: list[bytes] | None = None
    _held_size = 0

    def request(self, *args, **kwargs):
        scope = getattr(_local, "scope", None)
        if scope is not None:
            scope.connections.append(self)
        self._held, self._held_size = [], 0
        try:
            super().request(*args, **kwargs)
        except BaseException:
            self._held = None  # nothing of a request that failed to build is sent
            raise
        self._release()

    def send(self, data):
        held = self._held
        if held is not None and isinstance(data, bytes) and self._held_size + len(data) <= COALESCE_BYTES:
            held.append(data)
            self._held_size += len(data)
            return
        self._release(keep_holding=held is not None)
        super().send(data)

    def _release(self, *, keep_holding: bool = False) -> None:
        held, self._held, self._held_size = self._held, None, 0
        if held:
            super().send(b"".join(held))  # connects first if need be (http.client's auto_open)
        if keep_holding:
            self._held = []


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _watch_pools(adapter: HTTPAdapter) -> HTTPAdapter:
    adapter.poolmanager.pool_classes_by_scheme = {
        "http": _WatchedHTTPConnectionPool,
        "https": _WatchedHTTPSConnectionPool,
    }
    return adapter


# --- bounded reads -----------------------------------------------------------------------
# `requests` reads a whole body into memory and undoes its Content-Encoding on the way: 300 KB
# of gzip can become gigabytes. Every body we read goes through `read_capped`, which streams
# it and counts the bytes *after* decoding; a Content-Length is never trusted.


class ResponseTooLarge(requests.RequestException):
    """The answer's body, once decoded, is longer than the caller reads."""

    def __init__(self, limit: int, *, response: requests.Response | None = None):
        super().__init__(f"The answer is larger than {describe_size(limit)} once decoded.", response=response)
        self.limit = limit


def describe_size(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def read_capped(response: requests.Response, limit: int, *, truncate: bool = False) -> bytes:
    """The body of a `stream=True` response, at most `limit` bytes after decoding (gzip,
    deflate, br), read in chunks so no more than `limit` plus one chunk is ever held.

    A longer body raises `ResponseTooLarge`, or with `truncate` gives its first `limit` bytes.
    The body read is kept as `response.content`. The response is closed either way: the rest
    of an oversized body is not drained to reuse the connection.
    """
    try:
        if response._content_consumed or response.raw is None:  # type: ignore[attr-defined]  # read already
            body = response.content or b""
        else:
            body = _read_chunks(response, limit)
    finally:
        response.close()
    if len(body) > limit:
        if not truncate:
            raise ResponseTooLarge(limit, response=response)
        body = body[:limit]
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]  # requests keeps no other flag
    return body


def _read_chunks(response: requests.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(READ_CHUNK):  # decoded: urllib3 inflates at most a chunk
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:  # one byte over is enough to know
            break
    return b"".join(chunks)


class DeadlineSession(HTTPSession):
    """A requests-hardened session whose requests also have a total deadline, and whose
    answers are read capped: a request without `stream=True` gets at most `max_response_bytes`
    decoded bytes (else `ResponseTooLarge`); a streaming caller reads with `read_capped`."""

    deadline: float = 30.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def request(self, method, url, *args, **kwargs):
        with request_deadline(self.deadline):
            return super().request(method, url, *args, **kwargs)

    def send(self, request, **kwargs):
        stream = kwargs.get("stream", False)
        kwargs["stream"] = True  # requests would read the whole body otherwise
        response = super().send(request, **kwargs)
        if not stream:
            with request_deadline(self.deadline):  # the body too, when sent outside request()
                read_capped(response, self.max_response_bytes)
        return response


class PooledIPFilterAdapter(IPFilterAdapter):
    """requests-hardened's connect-time address filter with a pool sized for concurrency,
    and the same address rule as at save time (`common.ssrf.is_public_address`) on top of
    requests-hardened's own."""

    def __init__(self, *, pool_maxsize: int, **kwargs):
        super().__init__(**kwargs)
        self._pool_connections = POOL_CONNECTIONS
        self._pool_maxsize = pool_maxsize
        self.init_poolmanager(POOL_CONNECTIONS, pool_maxsize, block=False)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pinned = host_params["host"].strip("[]")
        if not is_public_address(ipaddress.ip_address(pinned)):
            raise InvalidIPAddress(pinned)
        return host_params, pool_kwargs


def hardened_session(
    *,
    allow_private: bool,
    user_agent: str,
    timeout: float,
    pool_maxsize: int = 10,
    deadline: float | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> requests.Session:
    """`timeout` bounds connecting and each read; `deadline` (default: `timeout`) the whole
    request, response body included when it is read inside `request_deadline()`;
    `max_response_bytes` the decoded body read of a request without `stream=True`."""
    config = Config(
        ip_filter_enable=False,  # the pooled filter adapter is mounted below
        ip_filter_allow_loopback_ips=False,
        never_redirect=True,
        default_timeout=(timeout, timeout),
        user_agent_override=user_agent,
    )
    session = DeadlineSession(config)
    session.deadline = deadline if deadline is not None else timeout
    session.max_response_bytes = max_response_bytes
    for scheme in ("http://", "https://"):
        if allow_private:
            adapter = HTTPAdapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=pool_maxsize)
        else:
            adapter = PooledIPFilterAdapter(is_https_proto=scheme == "https://", pool_maxsize=pool_maxsize)
        session.mount(scheme, _watch_pools(adapter))
    session.trust_env = False
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def cached_session(key: Hashable, factory: Callable[[], requests.Session]) -> requests.Session:
    """The process's session for `key`, built once by `factory` (thread-safe)."""
    session = _sessions.get(key)
    if session is None:
        with _lock:
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = factory()
    return session
