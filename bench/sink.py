"""A fast webhook sink for the benchmark: uvloop + httptools, keep-alive HTTP/1.1, loopback only.

Every ``POST`` is answered ``200`` at once, except paths under ``/hang``, which are read and never
answered (an endpoint that times out), and paths under ``/slow``, answered ``200`` after
``SLOW_SECONDS`` (inside the 2 s timeout: slow but alive, no breaker trips; counted as ``slow``,
not recorded, so windows hold only the other endpoints' deliveries). For each answered delivery
the sink records when it arrived and the event's ``created_at`` (from the body), so latency is
measured at the receiver.

Control endpoints (``GET``): ``/_stats`` → counts; ``/_window?from=N`` → records N.. as
``{"count", "first", "last", "latencies_ms", "by_prefix", "duplicates"}``.

Run: ``python -m bench.sink --port 0`` prints ``READY <port>`` once listening; with
``--certfile`` and ``--keyfile`` it serves HTTPS (``bench/http_clients.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httptools
import orjson

SLOW_SECONDS = 1.9
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
_CREATED = b'"created_at":"'
_ID = b'"id":"'


class Records:
    """What arrived, in arrival order (columnar lists: cheap to append at 10k+/s)."""

    def __init__(self) -> None:
        self.received: list[float] = []
        self.created: list[bytes] = []
        self.prefix: list[bytes] = []
        self.ids: set[bytes] = set()
        self.duplicates = 0
        self.hanging = 0
        self.slow = 0
        self._parsed: dict[bytes, float] = {}

    def add(self, path: bytes, body: bytes) -> None:
        now = time.time()
        i = body.find(_CREATED)
        created = body[i + len(_CREATED) : i + len(_CREATED) + 24] if i >= 0 else b""
        j = body.find(_ID)
        event_id = body[j + len(_ID) : body.find(b'"', j + len(_ID))] if j >= 0 else b""
        if event_id in self.ids:
            self.duplicates += 1
        else:
            self.ids.add(event_id)
        self.received.append(now)
        self.created.append(created)
        self.prefix.append(path[:3])

    def created_ts(self, raw: bytes) -> float | None:
        if not raw:
            return None
        ts = self._parsed.get(raw)
        if ts is None:
            ts = datetime.fromisoformat(raw.decode().replace("Z", "+00:00")).timestamp()
            self._parsed[raw] = ts
        return ts

    def window(self, start: int) -> dict[str, object]:
        received = self.received[start:]
        latencies: list[float] = []
        for got, raw in zip(received, self.created[start:], strict=True):
            ts = self.created_ts(raw)
            if ts is not None:
                latencies.append(round((got - ts) * 1000, 3))
        by_prefix: dict[str, int] = {}
        for p in self.prefix[start:]:
            key = p.decode(errors="replace")
            by_prefix[key] = by_prefix.get(key, 0) + 1
        return {
            "count": len(received),
            "first": received[0] if received else None,
            "last": received[-1] if received else None,
            "latencies_ms": latencies,
            "by_prefix": by_prefix,
            "duplicates": self.duplicates,
        }

    def times(self, start: int, prefix: bytes) -> dict[str, object]:
        """Arrival times (Unix seconds) since record ``start`` of paths starting ``prefix``."""
        return {
            "times": [
                t
                for t, p in zip(self.received[start:], self.prefix[start:], strict=True)
                if p.startswith(prefix[:3])
            ]
        }

    def stats(self) -> dict[str, object]:
        return {
            "count": len(self.received),
            "unique": len(self.ids),
            "duplicates": self.duplicates,
            "hanging": self.hanging,
            "slow": self.slow,
            "last": self.received[-1] if self.received else None,
        }


class SinkProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer in order."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.hung = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.hung:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        path = self.url
        if path.startswith(b"/hang"):
            self.hung = True  # never answer; the client times out and closes
            self.records.hanging += 1
            return
        if path.startswith(b"/slow"):
            self.records.slow += 1
            asyncio.get_running_loop().call_later(SLOW_SECONDS, self._answer_late)
            return
        if path.startswith(b"/_"):
            self.transport.write(self._control(path))
            return
        self.records.add(path, b"".join(self.body))
        self.transport.write(_OK)

    def _answer_late(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_OK)

    def _control(self, path: bytes) -> bytes:
        parts = urlsplit(path.decode())
        query = parse_qs(parts.query)
        if parts.path == "/_window":
            payload = self.records.window(int(query.get("from", ["0"])[0]))
        elif parts.path == "/_times":
            payload = self.records.times(
                int(query.get("from", ["0"])[0]), query.get("prefix", [""])[0].encode()
            )
        else:
            payload = self.records.stats()
        body = orjson.dumps(payload)
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        return head + body


async def serve(port: int, tls: ssl.SSLContext | None = None) -> None:
    loop = asyncio.get_running_loop()
    records = Records()
    server = await loop.create_server(
        lambda: SinkProtocol(records), "127.0.0.1", port, backlog=4096, ssl=tls
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark webhook sink (loopback only).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certfile", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    tls = None
    if args.certfile:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.certfile, args.keyfile)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        pass
    try:
        asyncio.run(serve(args.port, tls))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
