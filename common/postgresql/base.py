"""Django's PostgreSQL backend with a health check that costs no round trip while a
connection is in use.

`CONN_HEALTH_CHECKS` (config/settings/base.py) checks a persistent connection once per
request, before its first query: Django's check sends `SELECT 1` and waits for the answer,
one round trip on every request (a quarter of what `POST /api/events/` sends otherwise).

Here a connection that ran a query within the last `QUIET_CHECK_SECONDS` is checked by
looking at its socket without waiting: an idle connection the server still holds has
nothing to read; one that the server closed or is closing (a restart,
`pg_terminate_backend`, an idle timeout) has its error message or the end of the stream.
Only then, or when psycopg already knows the connection is broken or not idle, is Django's
`SELECT 1` sent, and the connection is replaced if it fails.

A connection quiet for longer gets Django's `SELECT 1` as before: a NAT, a load balancer or
a firewall may have forgotten its flow without a word to either end (an AWS NLB after 350 s
idle, IPVS, cloud NATs), and only a packet sent finds that out (the answer is a reset).
No middlebox forgets a flow within seconds, so a busy connection never pays the round trip
and an idle one is checked as thoroughly as Django checks it.
"""

from __future__ import annotations

import select
import time

from django.db.backends.postgresql import base
from psycopg import pq

#: a connection that ran a query within this many seconds is checked without a round trip
QUIET_CHECK_SECONDS = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    #: time.monotonic() of the last cursor (every query's) or successful check
    last_used = 0.0

    def create_cursor(self, name=None):
        self.last_used = time.monotonic()
        return super().create_cursor(name)

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if (
            connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
            and time.monotonic() - self.last_used <= QUIET_CHECK_SECONDS
            and not self._socket_readable()
        ):
            return True
        usable = super().is_usable()
        if usable:
            self.last_used = time.monotonic()
        return usable

    def _socket_readable(self) -> bool:
        """Whether the server has written to the idle connection (or its socket is unusable);
        poll, not select: select refuses descriptors above 1023."""
        try:
            poller = select.poll()
            poller.register(self.connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        except Exception:  # no socket to look at: let Django's check decide
            return True
