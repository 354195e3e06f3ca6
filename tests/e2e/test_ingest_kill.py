"""Every 202 of ingest is a commit: a ``callhook serve`` killed with SIGKILL right after
answering keeps every event it accepted (group commit answers only after the group's commit).

On both backends: 16 publishers send single events continuously; at the 200th 202 the test
kills the server at once, while requests are in flight, and then finds every accepted event in
the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import orjson
import pytest
from sqlalchemy import select

from callhook.platform import Platform
from callhook.store.tables import events
from tests.factories import make_account, make_token, sample_event
from tests.support.receiver import free_port

pytestmark = pytest.mark.e2e

CALLHOOK = str(Path(sys.executable).parent / "callhook")
LANES = 16
KILL_AT = 200


def _start(platform: Platform, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLHOOK_")},
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }
    if platform.settings.master_key:
        env["CALLHOOK_MASTER_KEY"] = platform.settings.master_key
    proc = subprocess.Popen(
        [CALLHOOK, "serve", "--port", str(port), "--no-worker", "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("callhook serve did not come up")


async def _publish_until_killed(
    port: int, token: str, make_body: Callable[[int], bytes], proc: subprocess.Popen[bytes]
) -> tuple[list[str], int]:
    """Publish from ``LANES`` connections; SIGKILL the server at the ``KILL_AT``-th 202.
    Returns the ids of every accepted event and how many requests got no answer."""
    url = f"http://127.0.0.1:{port}/internal/v1/events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    accepted: list[str] = []
    unanswered = 0
    counter = iter(range(10**9))
    killed = False

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=LANES)) as session:

        async def lane() -> None:
            nonlocal unanswered, killed
            while not killed:
                body = make_body(next(counter))
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        payload = await response.read()
                except aiohttp.ClientError:
                    unanswered += 1
                    return
                assert response.status == 202, payload
                accepted.append(orjson.loads(payload)["data"]["events"][0]["id"])
                if len(accepted) == KILL_AT and not killed:
                    proc.send_signal(signal.SIGKILL)  # at once, before anything else runs
                    killed = True

        await asyncio.wait_for(asyncio.gather(*(lane() for _ in range(LANES))), timeout=120)
    return accepted, unanswered


def test_every_202_survives_a_sigkill(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    platform = platform_factory()
    account = make_account(platform, url="https://hooks.example.com/callhook")
    token = make_token(platform, None, ["events.write"])
    pool = [orjson.dumps(sample_event(account_id=account.id, seed=s)) for s in range(64)]

    def body(n: int) -> bytes:
        return pool[n % len(pool)]  # no idempotency key: each publish is a new event

    port = free_port()
    proc = _start(platform, port)
    try:
        accepted, unanswered = asyncio.run(_publish_until_killed(port, token, body, proc))
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(accepted) >= KILL_AT
    assert unanswered > 0, "the kill came when nothing was in flight: nothing was tested"
    with platform.db.read() as conn:
        stored = {r.id for r in conn.execute(select(events.c.id))}
    missing = set(accepted) - stored
    assert not missing, f"{len(missing)} accepted events lost"
