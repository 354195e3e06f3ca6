"""The ceiling: a minimal, non-durable signed-POST loop with the fastest client.

The same headers and signatures as the worker (``request_headers``, fresh timestamp per
request), the same concurrency, against the same sink — but no database, no claims, no results,
no vetting or classification. What the worker reaches is reported as a ratio of this.

``--client pycurl`` (the default) is the fastest client that meets our request rules
(docs/decisions.md, "HTTP client for deliveries"): libcurl's multi interface on the event loop,
(``pycurl.AsyncCurlMulti``, as the sender uses it), with plain easy handles (no pinning, no
head checks). ``--client aiohttp`` is the loop with the client the sender used before.

Run: ``python -m bench.ceiling --url URL --seconds S --concurrency C [--client NAME]`` prints
one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time

import aiohttp
import orjson
import pycurl

from callhook.delivery.sender import request_headers

SECRET = "whsec_" + base64.b64encode(b"bench-ceiling-secret-32-bytes!!!").decode()  # unverified


def sample_body(n: int) -> bytes:
    """A realistic delivery body (~400 bytes) with a distinct id."""
    return orjson.dumps(
        {
            "id": f"evt_ceiling{n:020d}",
            "event": "incoming_call_start",
            "pbx_id": "call_01KF0K91Z9HHVYP843WV71CKDT",
            "account_id": "acc_01M84XDHT6A56J99FCD5XSD4ZF",
            "created_at": "2026-01-15T10:30:00.000Z",
            "call_id": "call_01KF0K91Z9HHVYP843WV71CKDT",
            "sequence": 1,
            "data": {
                "call_id": "call_01KF0K91Z9HHVYP843WV71CKDT",
                "direction": "inbound",
                "caller": "+12125550142",
                "callee": "+442079460123",
                "did": "+442079460123",
                "line": "Sales",
                "started_at": "2026-01-15T10:30:00.000Z",
            },
        }
    )


def signed(n: int) -> tuple[bytes, dict[str, str]]:
    body = sample_body(n)
    headers = request_headers(
        body=body,
        event_id=f"evt_ceiling{n:020d}",
        event="incoming_call_start",
        attempt=1,
        timestamp=int(time.time()),
        secrets=(SECRET,),
    )
    return body, headers


async def run_pycurl(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    multi = pycurl.AsyncCurlMulti()
    multi.setopt(pycurl.M_MAXCONNECTS, concurrency)
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def loop(k: int) -> None:
        nonlocal done, errors
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.POST, 1)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.TIMEOUT_MS, 2000)
        handle.setopt(pycurl.WRITEFUNCTION, len)  # the body is read and dropped
        n = k
        while time.monotonic() < deadline:
            body, headers = signed(n)
            handle.setopt(pycurl.HTTPHEADER, [f"{h}: {v}" for h, v in headers.items()])
            handle.setopt(pycurl.POSTFIELDS, body)
            try:
                await multi.perform(handle)
            except pycurl.error:
                errors += 1
            else:
                if handle.getinfo(pycurl.RESPONSE_CODE) == 200:
                    done += 1
                else:
                    errors += 1
            n += concurrency
        handle.close()

    t0 = time.monotonic()
    cpu0 = time.process_time()
    try:
        await asyncio.gather(*(loop(k) for k in range(concurrency)))
    finally:
        await multi.aclose()
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    return {
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "rate": done / elapsed if elapsed else 0.0,
        "cpu_s_per_1000": cpu / done * 1000 if done else 0.0,
    }


async def run_aiohttp(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(
        limit=concurrency, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=10
    )
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, skip_auto_headers=("Accept-Encoding",)
    ) as session:

        async def loop(k: int) -> None:
            nonlocal done, errors
            n = k
            while time.monotonic() < deadline:
                body, headers = signed(n)
                try:
                    async with session.post(
                        url,
                        data=body,
                        headers=headers,
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=2.0),
                    ) as response:
                        await response.content.read(64 * 1024)
                        if response.status == 200:
                            done += 1
                        else:
                            errors += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                n += concurrency

        t0 = time.monotonic()
        cpu0 = time.process_time()
        await asyncio.gather(*(loop(k) for k in range(concurrency)))
        elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    return {
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "rate": done / elapsed if elapsed else 0.0,
        "cpu_s_per_1000": cpu / done * 1000 if done else 0.0,
    }


CLIENTS = {"pycurl": run_pycurl, "aiohttp": run_aiohttp}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Signed-POST ceiling loop (loopback only).")
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="pycurl")
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("the ceiling loop only targets http://127.0.0.1")
    import uvloop

    uvloop.install()
    result = asyncio.run(CLIENTS[args.client](args.url, args.seconds, args.concurrency))
    print(orjson.dumps({"client": args.client, **result}).decode())


if __name__ == "__main__":
    main()
