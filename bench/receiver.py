"""A fast local webhook receiver for benchmarks (asyncio, HTTP/1.1 keep-alive).

Records (receive time, webhook-id, seq) for every POST (`"seq":` in the body, ours or
django-webhook's); `GET /records` returns them as JSON and `GET /reset` clears them; any
other request (a health check's GET) is answered `{"ok":true}`. Every answer comes after
DELAY seconds (default 0).
Run: python bench/receiver.py PORT [DELAY]
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

SEQ = re.compile(rb'"seq": ?(\d+)')  # ours: `"seq":1`; django-webhook (json.dumps): `"seq": 1`
records: list[tuple[float, str, int]] = []
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
JSON_OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
DELAY = 0.0


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            received = time.time()
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if DELAY:
                await asyncio.sleep(DELAY)
            if method == "GET" and path not in ("/records", "/reset"):
                writer.write(JSON_OK)
            elif method == "GET":
                if path == "/reset":
                    records.clear()
                payload = json.dumps(records).encode() if path == "/records" else b"{}"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(payload)).encode()
                    + b"\r\n\r\n"
                    + payload
                )
            else:
                match = SEQ.search(body)
                records.append((received, headers.get("webhook-id", ""), int(match.group(1)) if match else -1))
                writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    asyncio.run(main(int(sys.argv[1])))
