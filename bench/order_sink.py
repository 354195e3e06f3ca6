"""A webhook sink that checks per-call order (issue 14's bench): uvloop + httptools, loopback.

Every ``POST`` is answered ``200`` after a random 1–20 ms (``--latency-ms``, seeded); with
``--fail-first F``, an event's first arrival is answered ``500`` with probability F instead (a
flaky receiver: the sender retries it, and the retry is answered 200). Before the delay, a
call's event is checked by ``core.ordering.OrderAudit`` keyed by (path, call_id): every
lower sequence of the call must have finished (been answered 2xx) unless the gap was announced
with ``X-Webhook-Previous-Sequence``; when a 200 is written the event counts as finished.
Latency is measured at the sink from the body's ``created_at``, per group (call-control / bulk).

Control (``GET``): ``/_stats`` → ``{"count", "violations", "gaps", "duplicates", "refused",
"first", "last"}`` (``count``: arrivals to be answered 200; ``refused``: those answered 500; a
retry after a 500 is no duplicate);
``/_latency?from=T`` → ``{"call_control": [ms…], "bulk": [ms…]}`` for arrivals after time T;
``/_answered?within=S`` → ``{"count", "last"}``: the 200s written within S seconds of the first
arrival, and when the last of them was;
``/_reset`` starts over. Run: ``python -m bench.order_sink --port 0`` prints ``READY <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools
import orjson

from callhook.core import ordering

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
_FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"
_PREVIOUS = ordering.PREVIOUS_HEADER.lower().encode()


class State:
    def __init__(self, latency_ms: tuple[float, float], seed: int, fail_first: float = 0.0) -> None:
        self.latency_ms = latency_ms
        self.fail_first = fail_first
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.rng = random.Random(self.seed)  # each run refuses and delays alike
        self.audit = ordering.OrderAudit()
        self.count = 0
        self.ids: set[str] = set()
        self.refused_ids: set[str] = set()  # answered 500 once: their retry is expected
        self.refused = 0
        self.answered_at: list[float] = []  # when each 200 was written
        self.duplicates = 0
        self.first: float | None = None
        self.last: float | None = None
        self.latency: list[tuple[float, str, float]] = []  # (arrival, group, ms)

    def arrive(
        self, path: bytes, body: bytes, previous: int | None
    ) -> tuple[tuple[str, int] | None, bool]:
        """Check an arrival; returns its (call key, sequence) and whether to refuse it."""
        now = time.time()
        self.first = self.first or now
        doc = orjson.loads(body)
        event_id = doc.get("id", "")
        first_time = event_id not in self.ids
        if not first_time and event_id not in self.refused_ids:
            self.duplicates += 1
        self.refused_ids.discard(event_id)
        self.ids.add(event_id)
        refuse = first_time and self.fail_first > 0 and self.rng.random() < self.fail_first
        if refuse:
            self.refused += 1
            self.refused_ids.add(event_id)
        else:
            self.count += 1
        created = datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00")).timestamp()
        group = ordering.group_of(doc.get("event", ""))
        self.latency.append((now, group.value, (now - created) * 1000))
        call, seq = doc.get("call_id"), doc.get("sequence")
        if call is None:
            return None, refuse
        key = f"{path.decode()}|{call}"
        self.audit.arrive(ordering.Receipt(key, seq, previous))
        return (key, seq), refuse

    def answered(self, line: tuple[str, int] | None, *, ok: bool) -> None:
        self.last = time.time()
        if ok:
            self.answered_at.append(self.last)
        if line is not None and ok:
            self.audit.finish(*line)

    def delay(self) -> float:
        low, high = self.latency_ms
        return self.rng.uniform(low, high) / 1000

    def stats(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "violations": len(self.audit.violations),
            "gaps": self.audit.gaps_announced,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "first": self.first,
            "last": self.last,
        }


class SinkProtocol(asyncio.Protocol):
    """One connection; requests answered in order (HTTP/1.1 keep-alive, no pipelining)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.header = b""
        self.previous: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.body, self.previous = b"", [], None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == _PREVIOUS:
            self.previous = int(value)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        assert transport is not None
        if self.url.startswith(b"/_"):
            transport.write(self._control(self.url))
            return
        line, refuse = self.state.arrive(self.url, b"".join(self.body), self.previous)

        def answer() -> None:
            self.state.answered(line, ok=not refuse)
            if not transport.is_closing():
                transport.write(_FAIL if refuse else _OK)

        asyncio.get_running_loop().call_later(self.state.delay(), answer)

    def _control(self, path: bytes) -> bytes:
        parts = urlsplit(path.decode())
        query = parse_qs(parts.query)
        payload: Any
        if parts.path == "/_reset":
            self.state.reset()
            payload = {"reset": True}
        elif parts.path == "/_answered":
            within = float(query.get("within", ["0"])[0])
            start = self.state.first or 0.0
            inside = [at for at in self.state.answered_at if at - start <= within]
            payload = {"count": len(inside), "last": max(inside, default=None)}
        elif parts.path == "/_latency":
            since = float(query.get("from", ["0"])[0])
            payload = {"call_control": [], "bulk": []}
            for at, group, ms in self.state.latency:
                if at >= since:
                    payload[group].append(round(ms, 3))
        else:
            payload = self.state.stats()
        body = orjson.dumps(payload)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        return head + str(len(body)).encode() + b"\r\n\r\n" + body


async def serve(
    port: int, latency_ms: tuple[float, float], seed: int, fail_first: float = 0.0
) -> None:
    loop = asyncio.get_running_loop()
    state = State(latency_ms, seed, fail_first)
    server = await loop.create_server(lambda: SinkProtocol(state), "127.0.0.1", port, backlog=4096)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Ordering-checking webhook sink (loopback).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, nargs=2, default=(1.0, 20.0))
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--fail-first", type=float, default=0.0, help="share of first arrivals answered 500"
    )
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    try:
        asyncio.run(serve(args.port, tuple(args.latency_ms), args.seed, args.fail_first))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
