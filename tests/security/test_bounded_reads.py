"""Bounded reads: no answer from outside can fill a worker's memory.

Each outbound path (health check of a custom URL, OAuth code exchange, OAuth refresh,
webhook delivery) is pointed at a real local HTTP server that answers a gzip bomb: about
200 KB on the wire, 200 MiB once decoded. The call must end quickly with a clear outcome,
and the process must not have allocated more than a few MiB on the way.
"""

from __future__ import annotations

import resource
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from common.exceptions import UpstreamError
from common.http import ResponseTooLarge, hardened_session, read_capped
from health.checks import UNHEALTHY, check_integration
from integrations.models import Integration
from integrations.oauth.flows import oauth_exchange_code, oauth_start_authorization
from integrations.oauth.tokens import oauth_refresh_token
from tests.health.conftest import custom
from tests.integrations.oauth_helpers import oauth_integration
from tests.webhooks.receiver import Receiver, Reply
from webhooks import tasks
from webhooks.models import Delivery, WebhookLog
from webhooks.services import trigger_event, webhook_create

pytestmark = pytest.mark.django_db

DECODED_SIZE = 200 * 1024 * 1024
MAX_GROWTH = 8 * 1024 * 1024  # "a few MiB": the largest cap is 1 MiB
MAX_SECONDS = 5.0


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A JSON-looking gzip body of DECODED_SIZE bytes, built without holding them."""
    gzip = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [gzip.compress(b'{"access_token": "')]
    block = b"a" * (1024 * 1024)
    parts += [gzip.compress(block) for _ in range(DECODED_SIZE // len(block))]
    parts.append(gzip.compress(b'", "token_type": "Bearer"}') + gzip.flush())
    return b"".join(parts)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hang up mid-answer here on purpose


class BombServer:
    """A real HTTP server answering every GET and POST with `mode`:

    - "gzip": the bomb, `Content-Encoding: gzip` and its true (small) Content-Length;
    - "endless": plain bytes without end under a lying `Content-Length` of 1 TB.
    """

    def __init__(self, bomb: bytes):
        self.mode = "gzip"
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                try:
                    if server.mode == "gzip":
                        self.send_header("Content-Encoding", "gzip")
                        self.send_header("Content-Length", str(len(bomb)))
                        self.end_headers()
                        self.wfile.write(bomb)
                    else:
                        self.send_header("Content-Length", str(10**12))
                        self.end_headers()
                        chunk = b"a" * 65536
                        for _ in range(DECODED_SIZE // len(chunk)):
                            self.wfile.write(chunk)
                except OSError:  # the client stopped reading and hung up: as it should
                    self.close_connection = True

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> BombServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(bomb) -> Iterator[BombServer]:
    running = BombServer(bomb).start()
    yield running
    running.stop()


def bounded(call: Callable[[], Any]) -> Any:
    """Run `call`; assert it took under MAX_SECONDS and grew memory by under MAX_GROWTH
    (Python allocations at their peak, and the process's resident high-water mark)."""
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome = call()
    except Exception as error:  # checked by the caller, after the measurements
        outcome = error
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    maxrss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss_before
    assert peak < MAX_GROWTH, f"allocated up to {peak / 2**20:.0f} MiB while reading one answer"
    assert maxrss_growth < MAX_GROWTH, f"resident memory grew by {maxrss_growth / 2**20:.0f} MiB"
    assert elapsed < MAX_SECONDS, f"took {elapsed:.1f} s"
    return outcome


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def test_a_session_reads_up_to_its_cap_and_keeps_the_connection(receiver):
    session = hardened_session(allow_private=True, user_agent="t", timeout=5, max_response_bytes=10)
    receiver.default = Reply(body=b"0123456789")
    assert [session.get(receiver.url).content for _ in range(3)] == [b"0123456789"] * 3
    [pool] = session.get_adapter(receiver.url).poolmanager.pools._container.values()
    assert pool.num_connections == 1  # answers within the cap are read to the end: keep-alive

    receiver.default = Reply(body=b"01234567890")
    with pytest.raises(ResponseTooLarge, match="larger than 10 bytes once decoded") as raised:
        session.get(receiver.url)
    assert raised.value.response is not None and raised.value.response.status_code == 200


def test_a_streaming_caller_reads_capped_or_cut(receiver):
    session = hardened_session(allow_private=True, user_agent="t", timeout=5)
    receiver.default = Reply(body=b"x" * 50)
    response = session.get(receiver.url, stream=True)
    assert read_capped(response, 20, truncate=True) == b"x" * 20
    assert response.content == b"x" * 20
    with pytest.raises(ResponseTooLarge):
        read_capped(session.get(receiver.url, stream=True), 49)
    assert read_capped(session.get(receiver.url, stream=True), 50) == b"x" * 50


def test_the_bomb_is_a_bomb(bomb):
    assert len(bomb) < 512 * 1024
    assert len(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(bomb, 2 * DECODED_SIZE)) > DECODED_SIZE


@pytest.mark.parametrize("mode", ["gzip", "endless"])
def test_health_check_of_a_custom_url_reads_at_most_the_cap(organization, server, mode):
    server.mode = mode
    integration = custom(organization, server.url)

    result = bounded(lambda: check_integration(integration))

    assert server.hits == 1
    assert result.status == UNHEALTHY
    assert result.error == "Answer too large: more than 1 MiB once decoded (127.0.0.1)."
    assert result.http_status == 200


def custom_oauth(organization, server, **kwargs) -> Integration:
    config = {"authorization_url": server.url + "authorize", "token_url": server.url + "token", "client_id": "cid"}
    return oauth_integration(organization, "custom", config=config, credentials={"client_secret": "cs"}, **kwargs)


def assert_too_large(error: Any) -> None:
    assert isinstance(error, UpstreamError), error  # a 502 for the API
    assert str(error.message).startswith("The provider's token endpoint answered too large: more than 262144 bytes")


def test_oauth_code_exchange_reads_at_most_the_cap(organization, server):
    integration = custom_oauth(organization, server)
    state = oauth_start_authorization(integration=integration).state

    error = bounded(lambda: oauth_exchange_code(code="the-code", state=state, integration=integration))

    assert server.hits == 1
    assert_too_large(error)
    integration.refresh_from_db()
    assert integration.status != Integration.Status.ACTIVE


def test_oauth_refresh_reads_at_most_the_cap(organization, server):
    integration = custom_oauth(organization, server)
    Integration.objects.filter(pk=integration.pk).update(
        credentials={"client_secret": "cs", "access_token": "old-access", "refresh_token": "old-refresh"}
    )
    integration.refresh_from_db()

    error = bounded(lambda: oauth_refresh_token(integration=integration, force=True))

    assert server.hits == 1
    assert_too_large(error)
    integration.refresh_from_db()
    assert integration.credentials["access_token"] == "old-access"


@pytest.mark.parametrize("mode", ["gzip", "endless"])
def test_webhook_delivery_reads_at_most_the_cap(organization, server, mode):
    server.mode = mode
    webhook_create(organization=organization, name="Bomb", url=server.url, events=["application.created"])
    trigger_event(organization=organization, event="application.created", payload={"id": 1})

    assert bounded(tasks.deliver_due) == 1

    assert server.hits == 1
    assert Delivery.objects.get().state == Delivery.State.SUCCEEDED  # a 2xx: the long answer is only cut
    log = WebhookLog.objects.get()
    assert log.response_status == 200
    assert 0 < len(log.response_body) <= 4096
