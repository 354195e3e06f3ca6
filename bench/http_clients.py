"""Which HTTP client sends signed webhooks fastest? ``python -m bench.http_clients``.

Starts a sink (aiohttp.web on uvloop, its own process, loopback) and sends the same signed
400-byte JSON POSTs with aiohttp and with httpx at the same concurrency, printing throughput and
latency percentiles. The sink is shared, so the comparison is fair even where it caps both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import orjson

from callhook.signing import generate_secret, signature_headers

SINK = """
import asyncio, sys, uvloop
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/hook", ok)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("sink did not start")


BODY = orjson.dumps({"id": "evt_x", "event": "incoming_call_end", "pad": "x" * 300})
SECRET = generate_secret()

Send = Callable[[], Awaitable[None]]


async def _drive(send: Send, total: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = total

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


def _headers() -> dict[str, str]:
    h = signature_headers(body=BODY, msg_id="evt_x", timestamp=int(time.time()), secrets=[SECRET])
    return {"Content-Type": "application/json", **h}


async def with_aiohttp(url: str, total: int, concurrency: int) -> tuple[float, list[float]]:
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(url, data=BODY, headers=_headers()) as r:
                await r.read()

        return await _drive(send, total, concurrency)


async def with_httpx(url: str, total: int, concurrency: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def send() -> None:
            r = await client.post(url, content=BODY, headers=_headers())
            r.read()

        return await _drive(send, total, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    port = _free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    try:
        _wait_port(port)
        url = f"http://127.0.0.1:{port}/hook"
        import uvloop

        print(
            f"{args.requests} signed POSTs, concurrency {args.concurrency}, cores {os.cpu_count()}"
        )
        print(f"{'client':10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for name, fn in (("aiohttp", with_aiohttp), ("httpx", with_httpx)):
            uvloop.run(fn(url, 200, args.concurrency))  # warm up connections and code paths
            elapsed, lat = uvloop.run(fn(url, args.requests, args.concurrency))
            q = statistics.quantiles(lat, n=100)
            print(
                f"{name:10} {args.requests / elapsed:8.0f} {q[49] * 1000:8.2f} {q[98] * 1000:8.2f}"
            )
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
