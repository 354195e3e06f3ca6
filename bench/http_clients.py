"""Which HTTP client sends signed webhooks cheapest? ``python -m bench.http_clients``.

Starts the benchmark sink (``bench/sink.py``, its own process, loopback) serving HTTPS with a
certificate from a throwaway CA, and sends the same signed ~400-byte JSON POSTs over keep-alive
HTTPS with each client at the same concurrency. The number that matters is the client process's
CPU per request (user + system, all its threads: ``time.process_time``): on a 2-core machine the
sink, the database and the client share the cores, so CPU per request is what caps deliveries
per second. Rounds are interleaved (client A, B, C, A, B, C, ...) so drift on a shared machine
hits every client alike; the table gives medians. Connections are opened in a warm-up before
each measured round (a new TLS connection costs about 1 ms of CPU; see the ``new conn`` column,
one connection per request).

Clients:

* ``aiohttp`` — ``ClientSession`` + ``TCPConnector`` as the sender used it before.
* ``pycurl`` — libcurl's ``CurlMulti`` driven from the event loop: Callhook's own transport
  (``callhook.delivery._transport``: pinned address, head checked, 4 KiB excerpt).
* ``sender`` — Callhook's ``Sender.send`` end to end (vetting, classification) over pycurl.
* ``pyreqwest`` — Rust's reqwest (hyper, rustls) on its own Tokio runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp
import orjson
import trustme
from pyreqwest.client import ClientBuilder

from callhook.core.clock import SystemClock
from callhook.core.urlvet import parse_webhook_url
from callhook.delivery._transport import Transport
from callhook.delivery.sender import Sender, request_headers
from callhook.settings import Settings
from callhook.signing import generate_secret

BODY = orjson.dumps(
    {
        "id": "evt_01KF0K91Z9HHVYP843WV71CKDT",
        "event": "incoming_call_end",
        "account_id": "acc_01M84XDHT6A56J99FCD5XSD4ZF",
        "created_at": "2026-01-15T10:30:00.000Z",
        "pad": "x" * 220,
    }
)
SECRET = generate_secret()
TIMEOUT = 2.0

Send = Callable[[], Awaitable[None]]
#: A client: an async context that yields its ``send`` (one signed POST, body read, 200 checked).
Client = Callable[[str, Path, int], AbstractAsyncContextManager[Send]]


def _headers() -> dict[str, str]:
    return request_headers(
        body=BODY,
        event_id="evt_01KF0K91Z9HHVYP843WV71CKDT",
        event="incoming_call_end",
        attempt=1,
        timestamp=int(time.time()),
        secrets=(SECRET,),
    )


def _settings(ca: Path, concurrency: int) -> Settings:
    return Settings(
        ca_bundle=ca,
        allow_unsafe_targets=True,  # the sink is on loopback
        worker_max_in_flight=concurrency,
        delivery_timeout=TIMEOUT,
    )


class Failed(Exception):
    pass


@asynccontextmanager
async def with_aiohttp(url: str, ca: Path, concurrency: int) -> AsyncIterator[Send]:
    ctx = ssl.create_default_context(cafile=str(ca))
    connector = aiohttp.TCPConnector(
        limit=concurrency, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=10, ssl=ctx
    )
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, skip_auto_headers=("Accept-Encoding",)
    ) as session:

        async def send() -> None:
            async with session.post(
                url, data=BODY, headers=_headers(), allow_redirects=False, timeout=timeout
            ) as response:
                await response.content.read(4096)
                if response.status != 200:
                    raise Failed(response.status)

        yield send


@asynccontextmanager
async def with_pycurl(url: str, ca: Path, concurrency: int) -> AsyncIterator[Send]:
    transport = Transport(_settings(ca, concurrency))
    transport.open()
    target = parse_webhook_url(url, allow_unsafe=True)
    try:
        addresses = await transport.addresses(target)

        async def send() -> None:
            headers = [f"{k}: {v}" for k, v in _headers().items()]
            exchange = await transport.post(
                target, body=BODY, headers=headers, addresses=addresses, seconds=TIMEOUT
            )
            if exchange.errno or exchange.answer.status != 200:
                raise Failed(exchange.errno, exchange.message)

        yield send
    finally:
        await transport.close()


@asynccontextmanager
async def with_sender(url: str, ca: Path, concurrency: int) -> AsyncIterator[Send]:
    async with Sender(_settings(ca, concurrency), clock=SystemClock()) as sender:

        async def send() -> None:
            result = await sender.send(url=url, body=BODY, headers=_headers())
            if not result.outcome.delivered:
                raise Failed(result.outcome.message)

        yield send


@asynccontextmanager
async def with_pyreqwest(url: str, ca: Path, concurrency: int) -> AsyncIterator[Send]:
    client = (
        ClientBuilder()
        .add_root_certificate_pem(ca.read_bytes())
        .max_connections(concurrency)
        .timeout(timedelta(seconds=TIMEOUT))
        .follow_redirects(False)
        .http1_only()
        .build()
    )
    async with client:

        async def send() -> None:
            request = client.post(url).headers(_headers()).body_bytes(BODY).build()
            response = await request.send()
            await response.bytes()
            if response.status != 200:
                raise Failed(response.status)

        yield send


CLIENTS: dict[str, Client] = {
    "aiohttp": with_aiohttp,
    "pycurl": with_pycurl,
    "sender": with_sender,
    "pyreqwest": with_pyreqwest,
}


async def _drive(send: Send, total: int, concurrency: int) -> int:
    remaining = total
    failed = 0

    async def lane() -> None:
        nonlocal remaining, failed
        while remaining > 0:
            remaining -= 1
            try:
                await send()
            except Failed:
                failed += 1

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return failed


async def one_round(
    client: Client, url: str, ca: Path, total: int, concurrency: int
) -> tuple[float, float]:
    """(requests/s, CPU ms per request) over ``total`` requests on warm connections."""
    async with client(url, ca, concurrency) as send:
        await _drive(send, concurrency * 4, concurrency)  # open the connections
        cpu0, t0 = time.process_time(), time.perf_counter()
        failed = await _drive(send, total, concurrency)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if failed:
        raise RuntimeError(f"{failed} requests failed")
    return total / elapsed, cpu / total * 1000


async def new_connections(client: Client, url: str, ca: Path, total: int) -> float:
    """CPU ms per request when every request opens its own TLS connection."""
    cpu = 0.0
    for _ in range(total):
        async with client(url, ca, 1) as send:
            cpu0 = time.process_time()
            await send()
            cpu += time.process_time() - cpu0
    return cpu / total * 1000


def start_sink(cert: Path, key: Path) -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.sink", "--certfile", str(cert), "--keyfile", str(key)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    line = sink.stdout.readline()
    if not line.startswith("READY "):
        sink.kill()
        raise RuntimeError(f"sink did not start: {line!r}")
    return sink, int(line.split()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HTTP client CPU per signed HTTPS POST.")
    parser.add_argument("--requests", type=int, default=5000, help="per client per round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--new-connections", type=int, default=100, help="0 to skip")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args(argv)
    names = [n for n in args.clients.split(",") if n]
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost")
        ca_path, cert, key = Path(tmp, "ca.pem"), Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        ca.cert_pem.write_to_path(str(ca_path))
        leaf.private_key_pem.write_to_path(str(key))
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(cert), append=True)
        sink, port = start_sink(cert, key)
        try:
            url = f"https://localhost:{port}/hook"
            rates: dict[str, list[float]] = {n: [] for n in names}
            cpus: dict[str, list[float]] = {n: [] for n in names}
            for _ in range(args.rounds):
                for name in names:
                    rate, cpu = uvloop.run(
                        one_round(CLIENTS[name], url, ca_path, args.requests, args.concurrency)
                    )
                    rates[name].append(rate)
                    cpus[name].append(cpu)
            fresh: dict[str, float] = {}
            if args.new_connections:
                for name in names:
                    fresh[name] = uvloop.run(
                        new_connections(CLIENTS[name], url, ca_path, args.new_connections)
                    )
        finally:
            sink.terminate()
            sink.wait()
    print(
        f"{args.requests} signed HTTPS POSTs per client per round, {args.rounds} interleaved "
        f"rounds, {args.concurrency} in flight, keep-alive, {os.cpu_count()} cores; medians"
    )
    print(f"{'client':10} {'CPU ms/req':>10} {'req/s':>8} {'new conn':>9}  CPU ms/req by round")
    for name in names:
        by_round = " ".join(f"{c:.3f}" for c in cpus[name])
        new = f"{fresh[name]:9.2f}" if name in fresh else f"{'-':>9}"
        print(
            f"{name:10} {statistics.median(cpus[name]):10.3f} "
            f"{statistics.median(rates[name]):8.0f} {new}  {by_round}"
        )


if __name__ == "__main__":
    main()
