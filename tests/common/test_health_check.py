"""The PostgreSQL backend's connection health check (common/postgresql/base.py): a
persistent connection in use, that the server still holds, is checked without a round trip;
one the server closed is found and replaced before the request's first query fails on it;
one quiet for longer than QUIET_CHECK_SECONDS is checked with Django's `SELECT 1`."""

import os
import socket
import struct
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.core import signals
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from common.postgresql.base import QUIET_CHECK_SECONDS

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the backend is PostgreSQL's")
pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _next_request_pid() -> int:
    """What Django does at a request's start (close_old_connections, then the health check
    before the first query), and that query's backend."""
    signals.request_started.send(sender=None)
    return _backend_pid()


def _terminate(pid: int) -> None:
    params = connection.settings_dict
    with psycopg.connect(
        host=params.get("HOST") or "127.0.0.1",
        port=params.get("PORT") or 5432,
        user=params.get("USER") or None,
        dbname=params["NAME"],
        autocommit=True,
    ) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        # Until the backend has exited, its socket may not say so yet (at most 5 s).
        for _ in range(100):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.05)
        raise AssertionError(f"backend {pid} still runs 5 s after pg_terminate_backend")


def test_the_databases_use_this_backend():
    assert settings.DATABASES["default"]["ENGINE"] == "common.postgresql"
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    assert connection.vendor == "postgresql"


@contextmanager
def _traced(path):
    """What libpq sends and receives on the connection meanwhile, written to `path`."""
    with path.open("w") as out:
        connection.connection.pgconn.trace(out.fileno())
        try:
            yield
        finally:
            connection.connection.pgconn.untrace()


def test_a_healthy_idle_connection_is_checked_without_sending_anything(tmp_path):
    pid = _backend_pid()
    trace = tmp_path / "libpq.trace"
    with _traced(trace):
        assert connection.is_usable()
        connection.health_check_done = False  # type: ignore[attr-defined]
        connection.close_if_health_check_failed()
    assert trace.read_text() == ""  # no message either way: Django's check would send `SELECT 1`
    assert connection.connection is not None and _backend_pid() == pid


def test_a_connection_quiet_for_longer_is_checked_with_a_query(tmp_path):
    """A middlebox may have dropped a quiet connection's flow without telling either end:
    only a packet sent finds out, so a connection quiet for longer gets Django's check."""
    pid = _backend_pid()
    connection.last_used -= QUIET_CHECK_SECONDS + 1  # type: ignore[attr-defined]
    trace = tmp_path / "libpq.trace"
    with _traced(trace):
        assert connection.is_usable()
    assert "SELECT 1" in trace.read_text()
    assert _backend_pid() == pid
    with _traced(trace):  # used just now: checked without a round trip again
        assert connection.is_usable()
    assert "SELECT 1" not in trace.read_text()


def test_a_connection_on_a_descriptor_above_1023_is_checked_without_sending_anything(tmp_path):
    """select() refuses descriptors above 1023 (poll does not): such a connection, in a
    process holding many sockets, must not be judged broken and reopened on every request."""
    fillers = [os.open(os.devnull, os.O_RDONLY)]
    try:
        while (fd := os.dup(fillers[0])) < 1100:
            fillers.append(fd)
        fillers.append(fd)
        connection.close()
        pid = _backend_pid()  # connects on the lowest free descriptor: above 1100
    finally:
        for fd in fillers:
            os.close(fd)
    assert connection.connection.pgconn.socket > 1023
    trace = tmp_path / "libpq.trace"
    with _traced(trace):
        assert connection.is_usable()
    assert trace.read_text() == ""
    assert _backend_pid() == pid


def test_a_connection_the_server_closed_is_replaced_before_the_requests_first_query():
    old = _backend_pid()
    _terminate(old)
    assert not connection.is_usable()
    new = _next_request_pid()  # answers: no OperationalError from the dead connection
    assert new != old


def test_requests_keep_a_healthy_connection():
    first = _next_request_pid()
    assert _next_request_pid() == first
    assert _next_request_pid() == first


def test_inside_a_transaction_the_check_asks_the_server():
    with transaction.atomic():
        _backend_pid()
        assert connection.connection.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE
        assert connection.is_usable()


class _ForgetfulProxy:
    """A TCP relay to the database that can forget its flows as a NAT does: the database
    side is closed, nothing is said to the client, and the client's next packet is answered
    with a reset."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forgotten = threading.Event()
        self.flows: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=5)
            self.flows.append((client, server))
            self.forgotten.clear()
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and self.forgotten.is_set():
                    source.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    source.close()  # a reset, as for a flow the NAT no longer knows
                    return
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):  # one side ended: so does the flow
                sock.close()

    def forget(self) -> None:
        self.forgotten.set()
        for _, server in self.flows:
            server.close()  # the database side goes; the client is told nothing

    def close(self) -> None:
        self.listener.close()
        for flow in self.flows:
            for sock in flow:
                sock.close()


def test_a_quiet_connection_whose_flow_a_middlebox_forgot_is_replaced():
    params = connection.settings_dict
    proxy = _ForgetfulProxy(params.get("HOST") or "127.0.0.1", int(params.get("PORT") or 5432))
    wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
    wrapper.settings_dict = {**params, "HOST": "127.0.0.1", "PORT": str(proxy.port)}
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        proxy.forget()
        time.sleep(0.2)
        wrapper.last_used -= QUIET_CHECK_SECONDS + 1  # type: ignore[attr-defined]  # quiet as a NAT waits
        wrapper.health_check_done = False  # type: ignore[attr-defined]
        with wrapper.cursor() as cursor:  # the check's SELECT 1 meets the reset: a new connection
            cursor.execute("SELECT 42")
            assert cursor.fetchone() == (42,)
        assert len(proxy.flows) == 2
    finally:
        wrapper.close()
        proxy.close()
