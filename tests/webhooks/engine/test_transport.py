"""The engine's HTTP/1.1 client (webhooks/engine/transport.py) against raw local servers:
keep-alive reuse, framing (length, chunked, to the end), decoded caps, bad answers."""

import gzip
import socket
import threading
import time
import zlib

import pytest

from webhooks.engine import transport


class Scripted:
    """A TCP server answering each request with the next scripted reply (bytes); a reply
    of None closes the connection without answering. `close_after` closes each connection
    after one answer. Records the connections accepted and the requests' heads."""

    def __init__(self, replies: list[bytes | None], *, close_after: bool = False):
        self.replies = list(replies)
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook?x=1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        buffer = b""
        with conn:
            while self.replies:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                buffer = rest[length:]
                self.requests.append(head)
                reply = self.replies.pop(0)
                if reply is None:
                    return
                conn.sendall(reply)
                if self.close_after:
                    return

    def close(self):
        self.sock.close()


@pytest.fixture(autouse=True)
def _fresh_pool():
    transport.close_all()
    yield
    transport.close_all()


def _post(server: Scripted, body: bytes = b'{"a":1}', *, limit: int = 1000, headers=None, timeout: float = 5.0):
    target = transport.Target.build(server.url, {"content-type": "application/json"}, user_agent="test-agent")
    head = transport.request_head(target, headers or {"webhook-id": "msg_1"}, len(body))
    return transport.post(target, head, body, timeout=timeout, limit=limit, allow_private=True)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_it_sends_the_head_and_body_and_reuses_the_connection():
    server = Scripted([OK, OK, OK])
    for _ in range(3):
        answer = _post(server)
        assert (answer.status, answer.body, answer.truncated) == (200, b"ok", False)
    assert server.connections == 1
    lines = server.requests[0].decode().split("\r\n")
    assert lines[0] == "POST /hook?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}" in lines
    assert {
        "User-Agent: test-agent",
        "content-type: application/json",
        "webhook-id: msg_1",
        "Content-Length: 7",
    } <= set(lines)


def test_a_connection_the_receiver_closed_while_idle_is_not_reused():
    server = Scripted([OK, OK], close_after=True)
    assert _post(server).status == 200
    assert _post(server).status == 200  # the closed one was dropped before use
    assert server.connections == 2


def test_connection_close_and_http_1_0_answers_are_not_kept():
    server = Scripted(
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nfine"]
    )
    assert _post(server).status == 200
    answer = _post(server)  # read to the end of the stream: no length given
    assert (answer.status, answer.body) == (200, b"fine")
    assert server.connections == 2


def test_a_chunked_answer_is_decoded_and_the_connection_kept():
    chunked = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    server = Scripted([chunked, OK])
    answer = _post(server)
    assert (answer.status, answer.body) == (201, b"abcdefg")
    assert _post(server).status == 200
    assert server.connections == 1


def test_a_compressed_answer_is_read_capped_after_decoding():
    """Three kilobytes of gzip that inflate to 10 MB: at most `limit` bytes are inflated,
    the answer is marked cut and its connection closed rather than drained."""
    bomb = gzip.compress(b"a" * 10_000_000)
    assert len(bomb) < 20_000
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb
    server = Scripted([reply, OK])
    answer = _post(server, limit=1000)
    assert answer.status == 200 and answer.body == b"a" * 1000 and answer.truncated
    assert _post(server).status == 200
    assert server.connections == 2


def test_a_deflate_answer_is_decoded():
    body = zlib.compress(b"deflated!")
    server = Scripted(
        [b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n" % len(body) + body]
    )
    assert _post(server).body == b"deflated!"


def test_a_long_plain_answer_is_cut_at_the_limit():
    server = Scripted([b"HTTP/1.1 500 Oops\r\nRetry-After: 30\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000])
    answer = _post(server, limit=100)
    assert (answer.status, len(answer.body), answer.truncated) == (500, 100, True)
    assert answer.headers["retry-after"] == "30"


def test_interim_answers_are_skipped():
    server = Scripted([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK])
    assert _post(server).status == 200


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (None, transport.CONNECTION_CLOSED),
        (b"SSH-2.0-OpenSSH\r\n\r\n", transport.NOT_HTTP),
        (b"HTTP/1.1 abc\r\n\r\n", transport.NOT_HTTP),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", transport.CONNECTION_CLOSED),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000, "The answer's head is larger than 64 KiB."),
    ],
)
def test_a_bad_answer_is_an_error_naming_it(reply, error):
    server = Scripted([reply], close_after=True)
    with pytest.raises(transport.SendError) as raised:
        _post(server)
    assert str(raised.value) == error


def test_a_silent_receiver_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepted by the kernel, never answered
    target = transport.Target.build(f"http://127.0.0.1:{listener.getsockname()[1]}/", {}, user_agent="t")
    with pytest.raises(transport.SendError) as raised:
        transport.post(target, transport.request_head(target, {}, 0), b"", timeout=0.2, limit=10, allow_private=True)
    assert str(raised.value) == "Timed out after 0.2 s."
    listener.close()


def test_a_private_address_is_refused_unless_allowed():
    server = Scripted([OK])
    target = transport.Target.build(server.url, {}, user_agent="t")
    with pytest.raises(transport.SendError) as raised:
        transport.post(target, transport.request_head(target, {}, 0), b"", timeout=2, limit=10, allow_private=False)
    assert str(raised.value) == transport.REFUSED_PRIVATE
    assert server.connections == 0


@pytest.mark.parametrize(
    "headers",
    [{"x-a": "v\r\nInjected: 1"}, {"x-a": " leading"}, {"bad name": "v"}, {"x-a": "nul\x00"}, {"x-a": "snow ☃"}],
)
def test_a_header_that_would_break_the_request_is_refused(headers):
    server = Scripted([OK])
    with pytest.raises(transport.SendError):
        _post(server, headers=headers)
    with pytest.raises(transport.SendError):
        transport.Target.build(server.url, headers, user_agent="t")
    assert server.requests == []


def test_urls_it_cannot_send_to_are_refused():
    for url in ("ftp://example.com/", "http://user:pw@example.com/", "http:///path"):
        with pytest.raises(transport.SendError):
            transport.Target.build(url, {}, user_agent="t")


def test_a_kept_connection_closed_as_the_request_went_out_is_retried_once_on_a_new_one():
    """The receiver read the second request on the kept connection and closed it without a
    byte of an answer (its idle timeout): the request goes once more on a new connection."""
    server = Scripted([OK, None, OK])
    assert _post(server).status == 200
    assert _post(server).status == 200
    assert server.connections == 2
    assert len(server.requests) == 3  # the second request twice, with the same webhook-id
    assert server.requests[1] == server.requests[2]


def test_a_partial_answer_on_a_kept_connection_is_not_retried():
    """Part of an answer came back before the connection closed: the receiver had the request,
    so it is not sent again here (the engine's retry will)."""
    server = Scripted([OK, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"])  # then closes
    assert _post(server).status == 200
    with pytest.raises(transport.SendError) as raised:
        _post(server)
    assert str(raised.value) == transport.CONNECTION_CLOSED
    assert len(server.requests) == 2 and server.connections == 1


def test_a_url_with_non_ascii_host_or_path_goes_out_as_requests_sent_it():
    """A host name in Unicode goes out IDNA-encoded (Host, SNI, DNS), and a path or query
    with non-ASCII characters percent-encoded as UTF-8, as `requests` sent them."""
    target = transport.Target.build("http://bücher.example:8080/é?q=ü&x=%41", {}, user_agent="test-agent")
    assert target.host == "xn--bcher-kva.example"
    assert target.head.startswith(b"POST /%C3%A9?q=%C3%BC&x=A HTTP/1.1\r\nHost: xn--bcher-kva.example:8080\r\n")
    cyrillic = transport.Target.build("https://пример.испытание/путь", {}, user_agent="test-agent")
    assert cyrillic.head.startswith(
        b"POST /%D0%BF%D1%83%D1%82%D1%8C HTTP/1.1\r\nHost: xn--e1afmkfd.xn--80akhbyknj4f\r\n"
    )


def test_a_raw_deflate_answer_is_decoded():
    """`Content-Encoding: deflate` without the zlib wrapper (as some servers send it) is
    decoded, as urllib3 did, rather than failing the delivery."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = compressor.compress(b"raw deflated!") + compressor.flush()
    reply = b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    server = Scripted([reply])
    assert _post(server).body == b"raw deflated!"


def test_a_slow_connect_leaves_the_tls_handshake_only_the_time_left(monkeypatch):
    """Connecting takes most of `timeout` and the server then never finishes its first TLS
    record: the request still ends at its deadline, not a whole `timeout` later."""

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"\x16\x03\x03\x40\x00")  # a 16 KiB handshake record announced, never sent
            stop.wait(5)

    threading.Thread(target=trickle, daemon=True).start()

    class SlowConnect(socket.socket):
        def connect(self, address):
            time.sleep(0.4)
            super().connect(address)

    target = transport.Target.build(f"https://127.0.0.1:{listener.getsockname()[1]}/", {}, user_agent="test-agent")
    monkeypatch.setattr(transport.socket, "socket", SlowConnect)
    started = time.monotonic()
    with pytest.raises(transport.SendError, match=r"Timed out after 0\.5 s\."):
        transport.post(target, transport.request_head(target, {}, 0), b"", timeout=0.5, limit=10, allow_private=True)
    elapsed = time.monotonic() - started
    monkeypatch.undo()
    stop.set()
    listener.close()
    assert elapsed < 0.7


def test_an_address_whose_socket_cannot_be_made_is_skipped_for_the_next(monkeypatch):
    """As on a host without IPv6: the name resolves to an address of a family no socket can
    be made for, then to one that works. The next address is tried, as urllib3 did, rather
    than the error escaping the client."""
    server = Scripted([OK])
    port = int(server.url.split(":")[2].split("/")[0])
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        unsupported = (socket.AF_UNIX, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))
        return [unsupported, *real(host, *args, **kwargs)]

    monkeypatch.setattr(transport.socket, "getaddrinfo", resolve)
    assert _post(server).status == 200


def test_an_answer_head_over_64_kib_is_refused_even_when_it_arrives_whole():
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (100 * 1024) + b"\r\nContent-Length: 2\r\n\r\nok"
    server = Scripted([big])
    with pytest.raises(transport.SendError, match="larger than 64 KiB"):
        _post(server)


def test_an_answer_with_bare_line_feeds_is_read_as_http_client_read_it():
    """Some receivers end lines with LF alone; `requests` (http.client) took their answers,
    so a delivery they accepted must not fail here (it would be sent again and again)."""
    bare = b"HTTP/1.1 200 OK\nContent-Type: text/plain\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n"
    server = Scripted([bare, OK])
    answer = _post(server)
    assert (answer.status, answer.headers["content-type"], answer.body) == (200, "text/plain", b"ok")
    assert _post(server).status == 200
    assert server.connections == 1


def _idle_connections() -> int:
    return sum(len(stack) for stack in transport._idle.values())


def test_idle_connections_of_origins_not_sent_to_again_are_closed(monkeypatch):
    """Each kept connection holds a descriptor: those idle past IDLE_SECONDS are closed even
    when their origin gets no request again, and at most MAX_IDLE are kept in all."""
    monkeypatch.setattr(transport, "IDLE_SECONDS", 0.05)
    monkeypatch.setattr(transport, "PRUNE_SECONDS", 0.0)
    first = Scripted([OK])
    assert _post(first).status == 200
    assert _idle_connections() == 1
    time.sleep(0.1)
    second = Scripted([OK])
    assert _post(second).status == 200
    assert _idle_connections() == 1  # the first origin's connection, idle too long, is closed

    monkeypatch.setattr(transport, "IDLE_SECONDS", 60.0)
    monkeypatch.setattr(transport, "MAX_IDLE", 2)
    for server in [Scripted([OK]) for _ in range(3)]:
        assert _post(server).status == 200
    assert _idle_connections() == 2


def test_a_client_certificate_file_that_is_gone_is_a_tls_error(tmp_path):
    target = transport.Target.build("https://127.0.0.1:9/", {}, user_agent="t")
    with pytest.raises(transport.SendError) as raised:
        transport.post(
            target,
            transport.request_head(target, {}, 0),
            b"",
            timeout=1,
            limit=10,
            allow_private=True,
            cert=str(tmp_path / "gone.pem"),
        )
    assert str(raised.value) == transport.TLS_ERROR
