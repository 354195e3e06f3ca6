"""The ceiling: a minimal, non-durable signed-POST loop with the worker's HTTP client.

Same aiohttp version and connector settings as ``callhook.delivery.sender``, the same headers and
signatures (``request_headers``, fresh timestamp per request), the same concurrency, against the
same sink — but no database, no claims, no results. What the worker reaches is reported as a
ratio of this.

Run: ``python -m bench.ceiling --url URL --seconds S --concurrency C`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time

import aiohttp
import orjson

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


async def run(url: str, seconds: float, concurrency: int) -> dict[str, float]:
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
                body = sample_body(n)
                headers = request_headers(
                    body=body,
                    event_id=f"evt_ceiling{n:020d}",
                    event="incoming_call_start",
                    attempt=1,
                    timestamp=int(time.time()),
                    secrets=(SECRET,),
                )
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
        cpu0 = os.times()
        await asyncio.gather(*(loop(k) for k in range(concurrency)))
        elapsed = time.monotonic() - t0
        cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "rate": done / elapsed if elapsed else 0.0,
        "cpu_s_per_1000": cpu / done * 1000 if done else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Signed-POST ceiling loop (loopback only).")
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("the ceiling loop only targets http://127.0.0.1")
    import uvloop

    uvloop.install()
    print(orjson.dumps(asyncio.run(run(args.url, args.seconds, args.concurrency))).decode())


if __name__ == "__main__":
    main()
