#!/usr/bin/env python
"""The client side of one webhook send (`python bench/send_path.py [--requests N]`).

In this one process, against a local keep-alive receiver (bench/receiver.py), N sequential
POSTs of a delivery-sized body each way a send can be made, and the CPU (user + system)
and wall time per request:
- `engine` : what the delivery engine sends (webhooks/engine/sending.py): its own HTTP/1.1
  client (webhooks/engine/transport.py), the webhook's request head built once, this
  delivery's headers and length added, the answer read capped within the deadline;
- `hardened session` : the engine's previous way, still that of every other outbound call
  (common/http.py): a request template copied per delivery, sent by the hardened session's
  `send()`, read with `read_capped` inside `request_deadline()`;
- `adapter` : the same request sent by the session's transport adapter alone, without the
  session layer (hooks, its cookie jar, redirect look-ahead; tracing instruments that layer);
- `requests` : a plain `requests.Session().post()` (the usual way, for comparison);
- `urllib3`, `http.client` : the layers below, without the address filter, the deadline or
  the caps.
Each way runs 200 warm-up requests first; then the ways run in turn, `--rounds` times, and
the median of the rounds is printed, so a drift of the machine hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    import http.client

    import requests
    import urllib3

    from common.http import hardened_session, read_capped, request_deadline

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    receiver = subprocess.Popen([sys.executable, str(ROOT / "bench" / "receiver.py"), str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/hook"
        body = json.dumps(
            {"type": "application.created", "timestamp": "2026-12-04T18:00:00Z", "data": {"seq": 1, "stage": "applied"}}
        ).encode()
        headers = {
            "webhook-id": "msg_" + "a" * 26,
            "webhook-timestamp": "1764871200",
            "webhook-signature": "v1," + "b" * 44,
        }
        hardened = hardened_session(allow_private=True, user_agent="bench/1", timeout=5, pool_maxsize=4)
        template = hardened.prepare_request(requests.Request("POST", url, headers={"content-type": "application/json"}))

        def delivery() -> requests.PreparedRequest:
            prepared = template.copy()
            prepared.headers.update(headers)
            prepared.body = body
            prepared.headers["Content-Length"] = str(len(body))
            return prepared

        from webhooks.engine import transport

        target = transport.Target.build(url, {"content-type": "application/json"}, user_agent="bench/1")

        def engine() -> None:
            head = transport.request_head(target, headers, len(body))
            answer = transport.post(target, head, body, timeout=5, limit=65536, allow_private=True)
            assert answer.body == b"ok"

        def session_send() -> None:
            with request_deadline(5):
                response = hardened.send(delivery(), timeout=5, allow_redirects=False, stream=True)
                read_capped(response, 65536, truncate=True)

        adapter = hardened.get_adapter(url)

        def adapter_alone() -> None:
            with request_deadline(5):
                read_capped(adapter.send(delivery(), stream=True, timeout=(5, 5)), 65536, truncate=True)

        plain = requests.Session()
        all_headers = {"content-type": "application/json", **headers}

        def plain_requests() -> None:
            assert plain.post(url, data=body, headers=all_headers, timeout=5).content == b"ok"

        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=4)

        def plain_urllib3() -> None:
            answer = pool.urlopen("POST", "/hook", body=body, headers=all_headers, timeout=5, retries=False)
            assert answer.data == b"ok"

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

        def plain_http_client() -> None:
            connection.request("POST", "/hook", body=body, headers=all_headers)
            connection.getresponse().read()

        ways: dict[str, Callable[[], None]] = {
            "engine (transport)": engine,
            "hardened session.send": session_send,
            "adapter alone": adapter_alone,
            "requests": plain_requests,
            "urllib3": plain_urllib3,
            "http.client": plain_http_client,
        }
        for way in ways.values():
            for _ in range(200):
                way()
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        wall: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, way in ways.items():
                started_cpu, started = time.process_time(), time.perf_counter()
                for _ in range(args.requests):
                    way()
                cpu[name].append((time.process_time() - started_cpu) / args.requests * 1e6)
                wall[name].append((time.perf_counter() - started) / args.requests * 1e6)
        print(f"{args.requests:,} sequential keep-alive POSTs per way and round, median of {args.rounds} rounds:")
        for name in ways:
            print(
                f"  {name:24s} {statistics.median(cpu[name]):6.0f} us CPU  {statistics.median(wall[name]):6.0f} us wall"
                " per request"
            )
        print("Load average: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    finally:
        receiver.terminate()
        receiver.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
