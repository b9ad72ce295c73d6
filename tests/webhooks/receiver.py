"""A real local HTTP receiver for webhook tests: records requests, answers as told."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    def __init__(self, *, port: int = 0, requests: list[Received] | None = None):
        self.requests: list[Received] = [] if requests is None else requests
        self.replies: list[Reply] = []  # consumed in order; then `default`
        self.default = Reply()
        self.responder: Callable[[Received], Reply] | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._cond = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with receiver._lock:
                    receiver._connections.add(self.connection)

            def finish(self):
                with receiver._lock:
                    receiver._connections.discard(self.connection)
                super().finish()

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with receiver._cond:
                    receiver.requests.append(received)
                    receiver._cond.notify_all()
                    if receiver.responder is not None:
                        reply = receiver.responder(received)
                    else:
                        reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST  # health checks GET their URL

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256

            def handle_error(self, request, client_address):
                pass  # clients that time out and hang up are part of the tests

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open (keep-alive) connection: the receiver is down."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.time() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
                self._cond.wait(remaining)
            return list(self.requests)


class ConcurrencyTracker:
    """A responder that notes every message id received while an earlier request with the
    same id was still being answered (a duplicate concurrent send)."""

    def __init__(self, hold: float):
        self.hold = hold
        self.overlaps: list[str] = []
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Reply:
        msg_id = request.headers["webhook-id"]
        with self._lock:
            self._in_flight[msg_id] = self._in_flight.get(msg_id, 0) + 1
            if self._in_flight[msg_id] > 1:
                self.overlaps.append(msg_id)
        threading.Timer(self.hold, self._release, [msg_id]).start()
        return Reply(delay=self.hold)

    def _release(self, msg_id: str) -> None:
        with self._lock:
            self._in_flight[msg_id] -= 1


def main() -> None:
    """`python -m tests.webhooks.receiver --port 9000`: answer 200 to every request and print
    each one as a JSON line (path, headers, body), e.g. to watch deliveries by hand
    (README "First hour")."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=9000)
    port = parser.parse_args().port

    def show(received: Received) -> Reply:
        line = {"path": received.path, "headers": received.headers, "body": received.body.decode(errors="replace")}
        print(json.dumps(line), flush=True)
        return Reply()

    receiver = Receiver(port=port)
    receiver.responder = show
    print(f"Receiving on {receiver.url} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        receiver.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.server.server_close()


if __name__ == "__main__":
    main()
