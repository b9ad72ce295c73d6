"""The delivery engine's HTTP/1.1 client: one POST per attempt over kept-alive connections.

Why not `requests`: a send is the engine's largest cost, and most of it was the layers of
`requests`, urllib3 and `http.client` (prepared-request copies, case-insensitive header
dicts, proxy and cookie lookups, header parsing through the `email` package): about 300 µs
of CPU per request against about 60 µs here (bench/send_path.py). A webhook POST needs
little of them: one request whose head is mostly the same for every delivery of a webhook
(`Target`, built once per webhook and settings), one answer read capped.

What the hardened session (common/http.py) guarantees holds here too:
- **Addresses**: the host is resolved at connect time and every address is checked with
  `common.ssrf.is_public_address` unless private URLs are allowed; the connection goes to
  the address checked (DNS rebinding cannot swap in another). No proxy, no `.netrc`, no
  cookies, redirects never followed (a 3xx is an answer).
- **Time**: `timeout` bounds connecting and every read and write, and the whole request
  (the answer's body included) ends within `timeout` too: each socket operation gets the
  time left, so a receiver trickling a byte a second is cut off at the deadline. Name
  resolution is the exception: `getaddrinfo` has no timeout of its own (as with `requests`),
  so a slow resolver holds a send for the resolver's timeouts (resolv.conf); the time it
  takes counts against the deadline.
- **Size**: the answer's head is at most 64 KiB, its body is read up to `limit` bytes
  *decoded* (gzip and deflate are undone chunk by chunk, so a small compressed answer that
  inflates to gigabytes costs `limit` bytes); a longer body is cut, and its connection
  closed rather than drained.
- **TLS**: certificates verified against the CA bundle (certifi's, or
  `WEBHOOKS_CA_BUNDLE`), with the host's name (SNI), a client certificate when the
  webhook has one (mTLS; connections are pooled per certificate file).

Connections are kept per origin (scheme, host, port, certificate, verification) and
reused while the receiver keeps them open: one found closed or readable while idle is
dropped before use (as urllib3 does). A kept connection that the receiver closes just as a
request goes out (its idle timeout ran out meanwhile) gives back no byte of an answer: that
request alone is sent once more on a new connection, as Go's client does for requests with
an idempotency key (`webhook-id` is one). Any other failure is the attempt's outcome (the
engine retries later with the same `webhook-id`).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import select
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import idna
from requests.utils import requote_uri

from common.ssrf import is_public_address

#: the longest answer head read (status line and headers)
MAX_HEAD_BYTES = 64 * 1024
#: a request's head and a body up to this size go out in one write (one segment, one wake-up)
COALESCE_BYTES = 64 * 1024
#: idle connections kept per origin beyond this are closed
MAX_IDLE_PER_ORIGIN = 100
#: an idle connection older than this is closed rather than reused
IDLE_SECONDS = 60.0
#: idle connections kept in all (each holds a file descriptor); beyond, one is closed
MAX_IDLE = 256
#: how often, at most, idle connections of every origin are checked for their age
PRUNE_SECONDS = 1.0
READ_CHUNK = 64 * 1024

#: the outcome texts (webhooks/engine/sending.py logs them as the attempt's error)
REFUSED_PRIVATE = "Refused: the destination address is not public (SSRF protection)."
NOT_RESOLVED = "Could not resolve the host."
CONNECTION_REFUSED = "Connection refused."
CONNECTION_CLOSED = "Connection closed by the receiver."
CONNECTION_ERROR = "Connection error."
TLS_ERROR = "TLS error."
NOT_HTTP = "The answer is not HTTP."


class SendError(Exception):
    """No (complete) answer: `str(error)` is the outcome's error text, free of secrets."""


class _Timeout(Exception):
    pass


@dataclass
class Target:
    """What a webhook's requests share, built once per webhook and settings: the origin and
    the request head up to the per-delivery headers. `headers` are the fixed headers as given
    (custom ones, a bearer token): a template is dropped when they change."""

    scheme: str
    host: str
    port: int
    headers: dict[str, str]
    head: bytes = field(repr=False)

    @classmethod
    def build(cls, url: str, headers: dict[str, str], *, user_agent: str) -> Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise SendError(f"Request failed (unsupported URL scheme {scheme!r}).")
        if parts.username or parts.password:
            raise SendError("Request failed (credentials in the URL).")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise SendError("Request failed (invalid port).") from None
        host = parts.hostname
        if not host.isascii():  # as requests sent it: IDNA in Host, SNI and DNS
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError:
                raise SendError("Request failed (invalid host name).") from None
        # As requests sent it: what is not ASCII percent-encoded as UTF-8.
        target = requote_uri((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        default_port = port == (443 if scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if default_port else f"{shown}:{port}"
        lines = [f"POST {_checked_target(target)} HTTP/1.1", f"Host: {host_header}"]
        fixed = {"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate", "Accept": "*/*"}
        fixed["Connection"] = "keep-alive"
        names = {name.lower(): name for name in fixed}
        for name, value in headers.items():  # a custom header replaces a default of the same name
            fixed.pop(names.get(name.lower(), name), None)
            fixed[name] = value
        lines += [f"{_checked_name(name)}: {_checked_value(value)}" for name, value in fixed.items()]
        try:
            head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise SendError("Request failed (a header value is not Latin-1).") from None
        return cls(scheme=scheme, host=host, port=port, headers=dict(headers), head=head)


def _checked_target(target: str) -> str:
    if any(c in target for c in "\r\n\x00 "):
        raise SendError("Request failed (invalid characters in the URL).")
    return target


def _checked_name(name: str) -> str:
    if not name or any(c in name for c in "\r\n\x00: \t"):
        raise SendError("Request failed (InvalidHeader).")
    return name


def _checked_value(value: str) -> str:
    value = str(value)
    if any(c in value for c in "\r\n\x00") or value != value.strip(" \t"):
        raise SendError("Request failed (InvalidHeader).")
    return value


def request_head(target: Target, headers: dict[str, str], body_size: int) -> bytes:
    """The whole head of one request: the target's, this delivery's headers, the length."""
    extra = "".join(f"{_checked_name(name)}: {_checked_value(value)}\r\n" for name, value in headers.items())
    try:
        return target.head + extra.encode("latin-1") + b"Content-Length: %d\r\n\r\n" % body_size
    except UnicodeEncodeError:
        raise SendError("Request failed (a header value is not Latin-1).") from None


@dataclass
class Answer:
    status: int
    #: header names in lower case; a repeated header keeps its last value
    headers: dict[str, str]
    #: at most `limit` bytes, decoded
    body: bytes
    #: the body was longer than `limit` and was cut
    truncated: bool = False


# --- connections -----------------------------------------------------------------------------


class _Connection:
    __slots__ = ("buffer", "idle_since", "received", "sock")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()
        self.idle_since = 0.0
        #: a byte of the current request's answer came back
        self.received = False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def dropped(self, now: float) -> bool:
        """Closed by the receiver while idle (readable: EOF, or bytes nobody asked for), or idle
        too long."""
        if self.buffer or now - self.idle_since > IDLE_SECONDS:
            return True
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        try:
            return bool(poller.poll(0))
        except OSError:
            return True


_idle: dict[tuple, list[_Connection]] = {}
_idle_lock = threading.Lock()
#: idle connections in `_idle`, and when those idle too long were last closed
_idle_total = 0
_pruned_at = 0.0


def _take(key: tuple) -> _Connection | None:
    global _idle_total
    now = time.monotonic()
    while True:
        with _idle_lock:
            stack = _idle.get(key)
            if not stack:
                return None
            conn = stack.pop()
            _idle_total -= 1
        if not conn.dropped(now):
            return conn
        conn.close()


def _give_back(key: tuple, conn: _Connection) -> None:
    global _idle_total, _pruned_at
    now = conn.idle_since = time.monotonic()
    stale: list[_Connection] = []
    with _idle_lock:
        if now - _pruned_at >= PRUNE_SECONDS:
            # Origins not sent to again keep their connections (descriptors) until closed
            # here: without this, a worker sending to many receivers ran out of descriptors.
            _pruned_at = now
            for origin, kept in list(_idle.items()):
                fresh = [c for c in kept if now - c.idle_since <= IDLE_SECONDS]
                stale += [c for c in kept if now - c.idle_since > IDLE_SECONDS]
                if fresh:
                    _idle[origin] = fresh
                else:
                    del _idle[origin]
            _idle_total = sum(len(kept) for kept in _idle.values())
        stack = _idle.setdefault(key, [])
        keep = len(stack) < MAX_IDLE_PER_ORIGIN and _idle_total < MAX_IDLE
        if keep:
            stack.append(conn)
            _idle_total += 1
    for old in stale:
        old.close()
    if not keep:
        conn.close()


def close_all() -> None:
    """Close every idle connection (tests)."""
    global _idle_total
    with _idle_lock:
        stacks = list(_idle.values())
        _idle.clear()
        _idle_total = 0
    for stack in stacks:
        for conn in stack:
            conn.close()


def _after_fork_in_child() -> None:
    # Without the lock: another thread may have held it when the process forked.
    global _idle, _idle_lock, _idle_total
    stacks, _idle, _idle_lock, _idle_total = list(_idle.values()), {}, threading.Lock(), 0
    for stack in stacks:
        for conn in stack:
            conn.close()  # this process's descriptor only: the parent's connection stays open


os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.lru_cache(maxsize=64)
def _tls_context(verify: str | bool, cert: str | None, cert_stamp: int) -> ssl.SSLContext:
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        if verify is True:
            import certifi

            verify = certifi.where()
        context = ssl.create_default_context(cafile=verify)
    context.set_alpn_protocols(["http/1.1"])
    if cert:
        context.load_cert_chain(cert)
    return context


def _connect(target: Target, deadline: float, timeout: float, *, allow_private: bool, context) -> _Connection:
    try:
        addresses = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise SendError(NOT_RESOLVED) from None
    refused_private = False
    error: Exception | None = None
    for family, kind, proto, _, address in addresses:
        if not allow_private and not is_public_address(ipaddress.ip_address(str(address[0]).split("%", 1)[0])):
            refused_private = True
            continue
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:  # a family this host has no support for (IPv6 disabled): the next
            error = exc
            continue
        try:
            sock.settimeout(_left(deadline, timeout))
            sock.connect(address)  # the address checked: no second resolution
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock.settimeout(_left(deadline, timeout))  # the handshake gets what is left
                sock = context.wrap_socket(sock, server_hostname=target.host)
            return _Connection(sock)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, (TimeoutError, _Timeout)):
                raise _Timeout from None
            if not isinstance(exc, OSError):
                raise
            error = exc
    if error is not None:
        raise _failure(error) from None
    raise SendError(REFUSED_PRIVATE if refused_private else NOT_RESOLVED)


def _left(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Timeout
    return min(left, timeout)


def _failure(exc: BaseException) -> SendError:
    if isinstance(exc, ssl.SSLError):
        return SendError(TLS_ERROR)
    if isinstance(exc, ConnectionRefusedError):
        return SendError(CONNECTION_REFUSED)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return SendError(CONNECTION_CLOSED)
    return SendError(CONNECTION_ERROR)


# --- one request -----------------------------------------------------------------------------


def post(
    target: Target,
    head: bytes,
    body: bytes,
    *,
    timeout: float,
    limit: int,
    allow_private: bool,
    verify: str | bool = True,
    cert: str | None = None,
) -> Answer:
    """Send one request (`head` from `request_head`) and read its answer. Raises SendError
    (with the outcome's text) when there is no complete answer; a timeout's text names
    `timeout`."""
    deadline = time.monotonic() + timeout
    context = None
    if target.scheme == "https":
        try:  # a certificate file gone (its process directory cleaned) is a TLS error too
            context = _tls_context(verify, cert, os.stat(cert).st_mtime_ns if cert else 0)
        except (ssl.SSLError, OSError):
            raise SendError(TLS_ERROR) from None
    key = (target.scheme, target.host, target.port, verify, cert, allow_private)
    conn = _take(key)
    if conn is not None:
        try:
            return _exchange(conn, key, head, body, deadline, timeout, limit)
        except _NothingBack:
            # A kept connection the receiver closed as this request went out (its idle
            # timeout): nothing of an answer came back, so the request is sent once more on
            # a new connection. It may have been received: a receiver dedupes by
            # `webhook-id` (at least once), as after any retry.
            pass
    try:
        conn = _connect(target, deadline, timeout, allow_private=allow_private, context=context)
    except (TimeoutError, _Timeout):
        raise SendError(f"Timed out after {timeout:g} s.") from None
    try:
        return _exchange(conn, key, head, body, deadline, timeout, limit)
    except _NothingBack:
        raise SendError(CONNECTION_CLOSED) from None


class _NothingBack(Exception):
    """The connection was closed or reset before any byte of an answer came back."""


def _exchange(conn: _Connection, key: tuple, head: bytes, body: bytes, deadline: float, timeout: float, limit: int):
    conn.received = False
    try:
        if len(head) + len(body) <= COALESCE_BYTES:
            _send(conn, head + body, deadline, timeout)
        else:
            _send(conn, head, deadline, timeout)
            _send(conn, body, deadline, timeout)
        answer, reusable = _read_answer(conn, deadline, timeout, limit)
    except (TimeoutError, _Timeout):
        conn.close()
        raise SendError(f"Timed out after {timeout:g} s.") from None
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
        conn.close()
        if not conn.received:
            raise _NothingBack from None
        raise _failure(exc) from None
    except OSError as exc:
        conn.close()
        raise _failure(exc) from None
    except BaseException:
        conn.close()
        raise
    if reusable:
        _give_back(key, conn)
    else:
        conn.close()
    return answer


def _send(conn: _Connection, data: bytes, deadline: float, timeout: float) -> None:
    conn.sock.settimeout(_left(deadline, timeout))  # bounds the whole sendall
    conn.sock.sendall(data)


def _fill(conn: _Connection, deadline: float, timeout: float) -> bool:
    """Read more into the buffer; False at the end of the stream."""
    conn.sock.settimeout(_left(deadline, timeout))
    chunk = conn.sock.recv(READ_CHUNK)
    if not chunk:
        return False
    conn.received = True
    conn.buffer += chunk
    return True


_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _read_head(conn: _Connection, deadline: float, timeout: float) -> bytes:
    while True:
        # Lines end with CRLF, or LF alone as http.client (so requests) accepted too.
        end = _HEAD_END.search(conn.buffer, 0, MAX_HEAD_BYTES + 4)
        if end is not None:
            head = bytes(conn.buffer[: end.start()])
            del conn.buffer[: end.end()]
            return head
        if len(conn.buffer) > MAX_HEAD_BYTES:
            raise SendError("The answer's head is larger than 64 KiB.")
        if not _fill(conn, deadline, timeout):
            if not conn.received:
                raise _NothingBack
            raise SendError(CONNECTION_CLOSED if not conn.buffer else NOT_HTTP)


def _read_answer(conn: _Connection, deadline: float, timeout: float, limit: int) -> tuple[Answer, bool]:
    while True:
        head = _read_head(conn, deadline, timeout)
        lines = [line.removesuffix("\r") for line in head.decode("latin-1").split("\n")]
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
            raise SendError(NOT_HTTP)
        status = int(status_line[1])
        if not 100 <= status <= 999:
            raise SendError(NOT_HTTP)
        if 100 <= status < 200 and status != 101:
            continue  # an interim answer (100 Continue, 103 Early Hints): the final one follows
        break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    keep_alive = status_line[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if status in (204, 304) or status < 200:
        return Answer(status, headers, b""), keep_alive and status != 101
    decoder = _decoder(headers.get("content-encoding", ""))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw, complete = _read_chunked(conn, deadline, timeout, limit, decoder)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise SendError(NOT_HTTP) from None
        raw, complete = _read_length(conn, deadline, timeout, limit, length, decoder)
    else:
        raw, complete = _read_to_end(conn, deadline, timeout, limit, decoder)
        keep_alive = False
    truncated = len(raw) > limit
    return Answer(status, headers, raw[:limit], truncated), keep_alive and complete and not truncated


class _Decoded:
    """Bytes as read, undone of their Content-Encoding, at most `limit` + 1 of them."""

    def __init__(self, decoder, limit: int):
        self.decoder, self.limit = decoder, limit
        self.parts: list[bytes] = []
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size > self.limit

    def add(self, data: bytes) -> None:
        if self.decoder is not None:
            try:
                data = self.decoder.decompress(data, self.limit + 1 - self.size)
            except zlib.error:
                raise SendError("The answer's body could not be decoded.") from None
        self.parts.append(data)
        self.size += len(data)

    def value(self) -> bytes:
        return b"".join(self.parts)


def _decoder(encoding: str):
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    return None  # identity (or one we did not ask for: kept as sent)


class _Deflate:
    """Deflate in its zlib wrapper, or raw as some servers send it (urllib3 took both)."""

    def __init__(self):
        self._obj = zlib.decompressobj()
        self._seen: bytes | None = b""  # the input until the zlib header checked out

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._seen is None:
            return self._obj.decompress(data, max_length)
        self._seen += data
        try:
            out = self._obj.decompress(data, max_length)
        except zlib.error:
            seen, self._seen, self._obj = self._seen, None, zlib.decompressobj(-zlib.MAX_WBITS)
            return self._obj.decompress(seen, max_length)
        if len(self._seen) >= 2:  # the header is two bytes
            self._seen = None
        return out


def _take_buffer(conn: _Connection, size: int) -> bytes:
    data = bytes(conn.buffer[:size])
    del conn.buffer[:size]
    return data


def _read_exactly(conn, deadline, timeout, size: int, out: _Decoded) -> int:
    """Read up to `size` bytes of the body into `out` (fewer once it is full); the bytes left."""
    left = size
    while left > 0 and not out.full:
        if not conn.buffer and not _fill(conn, deadline, timeout):
            raise SendError(CONNECTION_CLOSED)
        data = _take_buffer(conn, left)
        left -= len(data)
        out.add(data)
    return left


def _read_length(conn, deadline, timeout, limit, length, decoder) -> tuple[bytes, bool]:
    out = _Decoded(decoder, limit)
    left = _read_exactly(conn, deadline, timeout, length, out)
    return out.value(), left == 0 and not conn.buffer


def _read_to_end(conn, deadline, timeout, limit, decoder) -> tuple[bytes, bool]:
    out = _Decoded(decoder, limit)
    while not out.full:
        if conn.buffer:
            out.add(_take_buffer(conn, len(conn.buffer)))
            continue
        if not _fill(conn, deadline, timeout):
            break
    return out.value(), False


def _read_chunked(conn, deadline, timeout, limit, decoder) -> tuple[bytes, bool]:
    out = _Decoded(decoder, limit)
    while not out.full:
        line = _read_line(conn, deadline, timeout)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise SendError(NOT_HTTP) from None
        if size == 0:
            while _read_line(conn, deadline, timeout):  # trailers, up to the empty line
                pass
            return out.value(), not conn.buffer
        if _read_exactly(conn, deadline, timeout, size, out) == 0:
            _read_line(conn, deadline, timeout)  # the CRLF after the chunk
    return out.value(), False


def _read_line(conn: _Connection, deadline: float, timeout: float) -> bytes:
    while True:
        end = conn.buffer.find(b"\n")
        if end >= 0:
            line = bytes(conn.buffer[:end]).removesuffix(b"\r")  # CRLF, or LF alone
            del conn.buffer[: end + 1]
            return line
        if len(conn.buffer) > MAX_HEAD_BYTES:
            raise SendError(NOT_HTTP)
        if not _fill(conn, deadline, timeout):
            raise SendError(CONNECTION_CLOSED)
