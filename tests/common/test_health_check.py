"""The PostgreSQL backend's connection health check (common/postgresql/base.py): a
persistent connection the server still holds is checked without a round trip; one the
server closed is found and replaced before the request's first query fails on it."""

import time

import psycopg
import pytest
from django.conf import settings
from django.core import signals
from django.db import connection, transaction

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


def test_a_healthy_idle_connection_is_checked_without_sending_anything(tmp_path):
    pid = _backend_pid()
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as out:
        connection.connection.pgconn.trace(out.fileno())
        try:
            assert connection.is_usable()
            connection.health_check_done = False  # type: ignore[attr-defined]
            connection.close_if_health_check_failed()
        finally:
            connection.connection.pgconn.untrace()
    assert trace.read_text() == ""  # no message either way: Django's check would send `SELECT 1`
    assert connection.connection is not None and _backend_pid() == pid


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
