"""Ordered delivery per call with real worker processes (issue 14): 1 and 3 processes
(``callhook worker --processes N``) on both backends, and a worker SIGKILLed mid-call.

The receiver checks the order as requests arrive (``core.ordering.OrderAudit``): event n+1 of a
call only after event n finished. Failures end a delivery at once here (retry policy ``none``),
so the real clock is enough; retries and the head-of-line bound are covered with a fast fake
clock in ``tests/integration/pipeline/test_ordering_delivery.py``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callhook.events import call_scenario
from callhook.platform import Platform
from callhook.publish import PublishRequest
from tests.factories import make_account, make_platform
from tests.support.ordered_receiver import OrderedBehaviour
from tests.support.receiver import Receiver, Tls, wait_for

CALLHOOK = str(Path(sys.executable).parent / "callhook")
SCENARIOS = ("answered", "missed-to-voicemail", "chain-hunt", "outbound")


def _worker(platform: Platform, ca: Path, processes: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CALLHOOK_DATABASE_URL": platform.settings.database_url,
        "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
        "CALLHOOK_CA_BUNDLE": str(ca),
        "CALLHOOK_LEASE_SECONDS": "2",
        "CALLHOOK_POLL_INTERVAL": "0.05",
        "CALLHOOK_WORKER_MAX_IN_FLIGHT": "16",
        "CALLHOOK_WORKER_BATCH_SIZE": "16",
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }
    if platform.settings.master_key:
        env["CALLHOOK_MASTER_KEY"] = platform.settings.master_key
    return subprocess.Popen(
        [CALLHOOK, "worker", "--processes", str(processes)],
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _publish_calls(
    platform: Platform, account_id: str, names: list[str], seed: int
) -> dict[str, frozenset[int]]:
    """Publish the calls' events interleaved at random, one per request; sequences per call."""
    rng = random.Random(seed)
    calls = [call_scenario(n, rng, start=platform.clock.now()) for n in names]
    cursors = [0] * len(calls)
    while any(c < len(call) for c, call in zip(cursors, calls, strict=True)):
        i = rng.choice([i for i, call in enumerate(calls) if cursors[i] < len(call)])
        item = calls[i][cursors[i]]
        cursors[i] += 1
        platform.publisher.publish([PublishRequest(item.event, item.pbx_id, account_id, item.data)])
    return {call[0].data["call_id"]: frozenset(range(1, len(call) + 1)) for call in calls}


def _all_finished(behaviour: OrderedBehaviour) -> bool:
    return all(
        behaviour.finished(call, s) for call, seqs in behaviour.expected().items() for s in seqs
    )


async def _run(tmp: Path, tls: Tls, names: list[str], processes: int, fail_rate: float) -> None:
    behaviour = OrderedBehaviour(seed=len(names) * 7 + processes, fail_rate=fail_rate)
    behaviour.final_failures = True  # retry policy none: a 500 finishes the delivery
    receiver = await Receiver(tls.server_context(), behaviour=behaviour).start()
    platform = make_platform(tmp, ca_bundle=tls.ca_path)
    account = make_account(platform, url=receiver.url, retry_policy="none")
    worker = None
    try:
        behaviour.audit.expected = _publish_calls(platform, account.id, names[: len(names) // 2], 1)
        worker = _worker(platform, tls.ca_path, processes)
        more = await asyncio.to_thread(
            _publish_calls, platform, account.id, names[len(names) // 2 :], 2
        )
        behaviour.audit.expected = {**behaviour.expected(), **more}
        await wait_for(lambda: _all_finished(behaviour), timeout=60)
    finally:
        _stop(worker)
        await receiver.stop()
    assert behaviour.audit.violations == []
    assert behaviour.audit.gaps_announced == 0


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.lists(st.sampled_from(SCENARIOS), min_size=2, max_size=8),
    processes=st.sampled_from([1, 3]),
    fail_rate=st.sampled_from([0.0, 0.25]),
)
def test_worker_processes_keep_each_calls_order(
    tmp_path: Path, tls: Tls, backend: str, names: list[str], processes: int, fail_rate: float
) -> None:
    del backend  # both backends (the fixture makes the platform's database)
    asyncio.run(_run(Path(tempfile.mkdtemp(dir=tmp_path)), tls, names, processes, fail_rate))


async def test_sigkill_mid_call_keeps_the_order(tmp_path: Path, tls: Tls, backend: str) -> None:
    """A worker killed mid-call: its held events are sent again after the lease (duplicates of
    earlier events), and no later event of a call overtakes them."""
    del backend
    behaviour = OrderedBehaviour(seed=11, latency_ms=(10.0, 30.0))
    receiver = await Receiver(tls.server_context(), behaviour=behaviour).start()
    platform = make_platform(tmp_path, ca_bundle=tls.ca_path)
    account = make_account(platform, url=receiver.url)
    names = [SCENARIOS[n % len(SCENARIOS)] for n in range(30)]
    behaviour.audit.expected = _publish_calls(platform, account.id, names, 5)
    first = second = None
    try:
        first = _worker(platform, tls.ca_path, 1)
        await wait_for(lambda: behaviour.audit.arrivals >= 40, timeout=30)
        _stop(first, signal.SIGKILL)
        assert not _all_finished(behaviour), "the kill came too late to test anything"
        second = _worker(platform, tls.ca_path, 1)
        await wait_for(lambda: _all_finished(behaviour), timeout=90)
    finally:
        _stop(first, signal.SIGKILL)
        _stop(second)
        await receiver.stop()
    assert behaviour.audit.violations == []
    assert behaviour.audit.arrivals >= sum(len(s) for s in behaviour.expected().values())
