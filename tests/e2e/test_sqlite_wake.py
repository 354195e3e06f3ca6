"""SQLite: an idle ``callhook worker`` process wakes on a publish from another process.

The worker polls every 120 s, far longer than the test may take, so only the datagram from the
publishing process (this test's publisher, or a ``callhook emit`` process) can explain a prompt
delivery.
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

import orjson
import pytest

from callhook.platform import Platform
from callhook.store.wake import SUFFIX, wake_dir
from tests import factories
from tests.factories import make_account, publish_sample
from tests.support.receiver import Receiver, Tls, wait_for

pytestmark = pytest.mark.e2e

CALLHOOK = str(Path(sys.executable).parent / "callhook")
SLOW_POLL = "120"


def _env(platform: Platform, ca: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        # Empty: the key file beside the database, as this process uses (a PostgreSQL test run
        # puts a key in the environment).
        "CALLHOOK_MASTER_KEY": platform.settings.master_key or "",
        "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
        "CALLHOOK_CA_BUNDLE": str(ca),
        "CALLHOOK_POLL_INTERVAL": SLOW_POLL,
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }


def _sockets(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return [n for n in os.listdir(directory) if n.endswith(SUFFIX)]


async def _emit(platform: Platform, ca: Path, account_id: str) -> str:
    """Publish one event from a ``callhook emit`` process; its event id."""
    proc = await asyncio.create_subprocess_exec(
        CALLHOOK,
        "emit",
        "incoming_call_start",
        "--account",
        account_id,
        "--json",
        env=_env(platform, ca),
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    event_id: str = orjson.loads(out)["id"]
    return event_id


async def test_idle_sqlite_worker_process_wakes_on_publish_from_another_process(
    tmp_path: Path, tls: Tls
) -> None:
    receiver = await Receiver(tls.server_context()).start()
    with factories.use_backend("sqlite"):
        platform = factories.make_platform(tmp_path, ca_bundle=tls.ca_path)
    account = make_account(platform, url=receiver.url)
    directory = wake_dir(platform.db)
    assert directory is not None

    def got(event_id: str) -> Callable[[], bool]:
        return lambda: any(r.headers.get("webhook-id") == event_id for r in receiver.received)

    worker = subprocess.Popen(
        [CALLHOOK, "worker"],
        env=_env(platform, tls.ca_path),
        stderr=subprocess.PIPE,
        start_new_session=True,  # a stray SIGINT to the test does not reach it
    )
    try:
        await wait_for(lambda: len(_sockets(directory)) == 1, timeout=30)
        # Warm up: the worker is listening and has drained the queue; then let it go idle.
        first = publish_sample(platform, account.id, seed=0).id
        await wait_for(got(first), timeout=20)
        await asyncio.sleep(0.3)
        latencies = []
        for seed in range(1, 6):  # from this process's Platform publisher
            t0 = time.perf_counter()
            event_id = publish_sample(platform, account.id, seed=seed).id
            await wait_for(got(event_id), timeout=20)
            latencies.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.1)
        print(
            f"publish → received, idle SQLite worker process (ms): {[round(x) for x in latencies]}"
        )
        emitted = await _emit(platform, tls.ca_path, account.id)  # from a CLI process
        await wait_for(got(emitted), timeout=20)
        worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(worker.communicate, timeout=30)
        assert worker.returncode == 0, stderr.decode(errors="replace")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        await receiver.stop()
    assert _sockets(directory) == []  # the stopped worker unlinked its socket
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 7
