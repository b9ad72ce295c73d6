"""A prepared request sent by a hardened session (common/http.py) as the delivery engine
sends one (`send(..., stream=True, allow_redirects=False)`), against a real local server:
no redirect followed, no cookie kept, the address filter, the timeout, the deadline, and
the request's head and a small body written at once."""

from __future__ import annotations

import time

import pytest
import requests

from common.http import (
    COALESCE_BYTES,
    InvalidIPAddress,
    hardened_session,
    read_capped,
    request_deadline,
)
from tests.webhooks.receiver import Receiver, Reply


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def _session(*, allow_private: bool = True, timeout: float = 5.0) -> requests.Session:
    return hardened_session(allow_private=allow_private, user_agent="probe/1", timeout=timeout)


def _send(session: requests.Session, request: requests.PreparedRequest, *, timeout: float) -> requests.Response:
    return session.send(request, timeout=timeout, stream=True, allow_redirects=False)


def _prepared(session: requests.Session, url: str, body: bytes = b'{"a":1}') -> requests.PreparedRequest:
    request = session.prepare_request(requests.Request("POST", url, headers={"X-Custom": "yes"}))
    request.body = body
    request.headers["Content-Length"] = str(len(body))
    return request


def test_it_sends_the_prepared_request_as_it_is(receiver):
    session = _session()
    response = _send(session, _prepared(session, receiver.url), timeout=5)
    assert response.status_code == 200
    assert read_capped(response, 1024) == b"ok"
    (received,) = receiver.requests
    assert received.path == "/hook"
    assert received.body == b'{"a":1}'
    assert received.headers["x-custom"] == "yes"
    assert received.headers["user-agent"] == "probe/1"


def test_a_redirect_is_answered_not_followed(receiver):
    receiver.replies.append(Reply(status=302, headers={"Location": receiver.url + "elsewhere"}))
    session = _session()
    response = _send(session, _prepared(session, receiver.url), timeout=5)
    assert response.status_code == 302
    read_capped(response, 1024)
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_a_cookie_set_by_the_receiver_is_never_kept_nor_sent(receiver):
    receiver.replies.append(Reply(headers={"Set-Cookie": "session=receiver-secret; Path=/"}))
    session = _session()
    for _ in range(2):
        read_capped(_send(session, _prepared(session, receiver.url), timeout=5), 1024)
    assert len(session.cookies) == 0
    assert "cookie" not in receiver.requests[1].headers


def test_a_private_address_is_refused_when_private_urls_are_not_allowed(receiver):
    session = _session(allow_private=False)
    with pytest.raises(InvalidIPAddress):
        _send(session, _prepared(session, receiver.url), timeout=5)
    assert receiver.requests == []


def test_the_timeout_bounds_a_slow_answer(receiver):
    receiver.default = Reply(delay=2.0)
    session = _session(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        _send(session, _prepared(session, receiver.url), timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_the_deadline_bounds_the_whole_request(receiver):
    receiver.default = Reply(delay=2.0)
    session = _session(timeout=5)
    started = time.monotonic()
    with pytest.raises(requests.RequestException), request_deadline(0.4):
        read_capped(_send(session, _prepared(session, receiver.url), timeout=5), 1024)
    assert time.monotonic() - started < 1.5


class _CountingSocket:
    """The connection's real socket, counting its writes."""

    def __init__(self, sock):
        self._sock = sock
        self.writes: list[int] = []

    def sendall(self, data, *args):
        self.writes.append(len(data))
        return self._sock.sendall(data, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _counted_connection(session: requests.Session, request: requests.PreparedRequest) -> _CountingSocket:
    """Put a connected, counting connection in the pool the request will use."""
    pool = session.get_adapter(request.url).get_connection_with_tls_context(request, True)
    connection = pool._get_conn()
    connection.connect()
    counting = _CountingSocket(connection.sock)
    connection.sock = counting
    pool._put_conn(connection)
    return counting


def test_the_head_and_a_small_body_go_out_in_one_write(receiver):
    session = _session()
    request = _prepared(session, receiver.url, body=b'{"a":"' + b"x" * 2000 + b'"}')
    counting = _counted_connection(session, request)
    read_capped(_send(session, request, timeout=5), 1024)
    assert len(counting.writes) == 1  # urllib3 alone writes the head, then the body
    assert counting.writes[0] > 2000
    assert receiver.requests[0].body == request.body


def test_a_large_body_is_written_as_it_comes_and_arrives_whole(receiver):
    session = _session()
    body = b'{"a":"' + b"x" * (COALESCE_BYTES + 10) + b'"}'
    request = _prepared(session, receiver.url, body=body)
    counting = _counted_connection(session, request)
    read_capped(_send(session, request, timeout=5), 1024)
    assert len(counting.writes) == 2  # the head, then the body that does not fit
    assert receiver.requests[0].body == body
