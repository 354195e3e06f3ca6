"""``callhook serve --processes 2``: two API processes on one port, both publishing into one
database (on SQLite, two writer processes on one file), drained and stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


def _serving_pids(children: set[int], port: int) -> set[int]:
    """Which of ``children`` hold a socket listening on ``port`` (from /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
            inodes.add(fields[9])
    holders = set()
    for pid in children:
        with_fd = Path(f"/proc/{pid}/fd")
        try:
            links = {os.readlink(fd) for fd in with_fd.iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            holders.add(pid)
    return holders


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_api_processes_share_the_port_and_the_database(
    platform_factory: Callable[..., Platform],
) -> None:
    platform = platform_factory()
    account = make_account(platform, url="https://hooks.example.com/callhook")
    token = make_token(platform, None, ["events.write"])
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLHOOK_")},
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }
    if platform.settings.master_key:
        env["CALLHOOK_MASTER_KEY"] = platform.settings.master_key
    proc = subprocess.Popen(
        [CALLHOOK, "serve", "--port", str(port), "--no-worker", "--processes", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while len(_serving_pids(_children(proc.pid), port)) < 2:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "two API processes did not come up"
            time.sleep(0.1)
        bodies = [orjson.dumps(sample_event(account_id=account.id, seed=s)) for s in range(80)]

        async def publish_all() -> list[httpx.Response]:
            # A client per request: new connections, accepted by whichever process is free.
            async def one(body: bytes) -> httpx.Response:
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    return await client.post(
                        "/internal/v1/events",
                        content=body,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json",
                        },
                    )

            return list(await asyncio.gather(*(one(b) for b in bodies)))

        responses = asyncio.run(publish_all())
        assert [r.status_code for r in responses] == [202] * len(bodies)
        answered = {r.json()["data"]["events"][0]["id"] for r in responses}
        servers = _serving_pids(_children(proc.pid), port)
        assert len(servers) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        # Drained and exited before the supervisor did (an exited one may still await reaping).
        assert not any(_alive(pid) for pid in servers), "API processes left running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with platform.db.read() as conn:
        stored = {r.id for r in conn.execute(select(events.c.id))}
    assert stored == answered
