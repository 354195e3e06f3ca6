"""Real ``callhook worker`` processes on one PostgreSQL schema, and a fast plain-HTTP receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import orjson
from aiohttp import web
from sqlalchemy import func, select

from callhook.platform import Platform
from callhook.publish import PublishRequest
from callhook.store.tables import deliveries
from tests.factories import make_account, sample_event
from tests.support.receiver import Receiver

CALLHOOK = str(Path(sys.executable).parent / "callhook")


def worker_env(platform: Platform, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        "CALLHOOK_MASTER_KEY": platform.settings.master_key or "",
        "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
        "CALLHOOK_LOG_LEVEL": "WARNING",
        "CALLHOOK_LOG_JSON": "1",
        "CALLHOOK_WORKER_BATCH_SIZE": "64",
        "CALLHOOK_WORKER_MAX_IN_FLIGHT": "64",
        "CALLHOOK_WORKER_PER_ENDPOINT_LIMIT": "16",
        "CALLHOOK_POLL_INTERVAL": "0.2",
    }
    env.update(extra)
    return env


def start_worker(
    platform: Platform, *args: str, log: Path, **extra: str
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [CALLHOOK, "worker", *args],
            env=worker_env(platform, **extra),
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,  # a stray SIGINT to the test does not reach it
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


class CountingReceiver:
    """Plain HTTP on loopback (the heavy tests measure the queue, not TLS); counts event ids."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.ids: Counter[str] = Counter()
        self._receiver = Receiver(None, behaviour=self._ok)

    async def _ok(self, request: web.Request) -> web.StreamResponse:
        self.ids[orjson.loads(await request.read())["id"]] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=200)

    @property
    def url(self) -> str:
        return self._receiver.url

    @property
    def total(self) -> int:
        return sum(self.ids.values())

    async def start(self) -> CountingReceiver:
        await self._receiver.start()
        return self

    async def stop(self) -> None:
        self._receiver.received.clear()
        await self._receiver.stop()


def accounts(platform: Platform, url: str, count: int) -> list[str]:
    return [make_account(platform, url=url, name=f"tenant {i}").id for i in range(count)]


def requests(account_ids: Sequence[str], count: int, *, offset: int = 0) -> list[PublishRequest]:
    template = sample_event("incoming_call_end", seed=1)
    out = []
    for i in range(offset, offset + count):
        data = {**template["data"], "call_id": f"call-{i}"}
        out.append(
            PublishRequest(
                template["event"], f"pbx-{i % 50}", account_ids[i % len(account_ids)], data
            )
        )
    return out


def publish(platform: Platform, reqs: Sequence[PublishRequest], batch: int = 500) -> set[str]:
    ids: set[str] = set()
    for start in range(0, len(reqs), batch):
        ids.update(p.id for p in platform.publisher.publish(reqs[start : start + batch]))
    return ids


def status_counts(platform: Platform) -> dict[str, int]:
    with platform.db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        ).all()
    return {status: int(n) for status, n in rows}


def problems(log: Path) -> list[str]:
    """Worker log lines that signal trouble: database errors, tracebacks, deadlocks."""
    if not log.exists():
        return []
    bad = ("deadlock", "serializ", "traceback", '"level":"error"', '"level":"critical"')
    return [line for line in log.read_text().splitlines() if any(b in line.lower() for b in bad)]
