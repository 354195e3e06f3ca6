"""Group commit of ingest: concurrent publishes share a transaction, each all or nothing.

On both backends. The committer tests hold the writer on its first group so that the rest
queue up and are certainly written as one group; the HTTP test sends many publishes at once
through a live server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, select

from callhook.api.ingest import IngestWriter, ingest_writer
from callhook.errors import PayloadInvalid
from callhook.platform import Platform
from callhook.publish import Published, PublishRequest, parse_event
from callhook.store.group_commit import GroupCommitter
from callhook.store.tables import deliveries, events
from tests.factories import make_account, make_token, sample_event
from tests.support.live import serving


@pytest.fixture(autouse=True)
def _on_each_backend(backend: str) -> str:
    return backend


def _stored(platform: Platform) -> tuple[set[str], set[str]]:
    """Ids of every event and of the events that have a delivery."""
    with platform.db.read() as conn:
        ids = {r.id for r in conn.execute(select(events.c.id))}
        delivered = {r.event_id for r in conn.execute(select(deliveries.c.event_id))}
    return ids, delivered


class Gate:
    """Holds the writer inside its first ``write`` until ``open``: the rest queue meanwhile."""

    def __init__(self, write: Callable[[Connection, Sequence[PublishRequest]], list[Published]]):
        self._write = write
        self.entered = threading.Event()
        self._open = threading.Event()
        self.calls: list[int] = []  # items per call of ``write``

    def __call__(self, conn: Connection, items: Sequence[PublishRequest]) -> list[Published]:
        self.calls.append(len(items))
        if not self.entered.is_set():
            self.entered.set()
            assert self._open.wait(30), "the test never opened the gate"
        return self._write(conn, items)

    def open(self) -> None:
        self._open.set()


def _request(account_id: str, seed: int, **extra: Any) -> list[PublishRequest]:
    return [parse_event({**sample_event(account_id=account_id, seed=seed), **extra})]


async def _held_group(
    committer: GroupCommitter[PublishRequest, Published],
    gate: Gate,
    first: list[PublishRequest],
    rest: list[list[PublishRequest]],
) -> tuple[list[Published] | BaseException, list[list[Published] | BaseException]]:
    """Submit ``first`` (the writer takes it alone and waits at the gate), queue ``rest``
    behind it, open the gate; every outcome, results or the exception."""

    async def outcome(unit: list[PublishRequest]) -> list[Published] | BaseException:
        try:
            return await committer.submit(unit)
        except Exception as exc:
            return exc

    head = asyncio.create_task(outcome(first))
    await asyncio.to_thread(gate.entered.wait, 30)
    tasks = [asyncio.create_task(outcome(unit)) for unit in rest]
    await asyncio.sleep(0)  # every task has queued its unit (``submit`` queues before awaiting)
    gate.open()
    return await head, list(await asyncio.gather(*tasks))


async def test_a_bad_publish_in_a_group_fails_alone(
    platform_factory: Callable[..., Platform],
) -> None:
    platform = platform_factory()
    account = make_account(platform, url="https://hooks.example.com/callhook")
    woken: list[int] = []
    platform.publisher.on_publish(lambda: woken.append(1))
    gate = Gate(platform.publisher.write)
    writer: IngestWriter = GroupCommitter(
        platform.db,
        gate,
        after_commit=lambda results: platform.publisher.notify(),
        name="test-writer",
    )
    rest = [_request(account.id, seed) for seed in range(1, 31)]
    bad_at = 17
    rest.insert(bad_at, _request("acc_nope", 99))
    # Two publishes of one idempotency key in the group: the second is the first's duplicate.
    rest.append(_request(account.id, 200, idempotency_key="pbx-7"))
    rest.append(_request(account.id, 201, idempotency_key="pbx-7"))
    try:
        head, outcomes = await _held_group(writer, gate, _request(account.id, 0), rest)
    finally:
        await asyncio.to_thread(writer.close, 30)

    assert not isinstance(head, BaseException)
    bad = outcomes.pop(bad_at)
    assert isinstance(bad, PayloadInvalid)
    assert bad.message == "account_id: unknown account 'acc_nope'"  # as a lone publish says
    good = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(good) == len(outcomes) == 32
    first_key, second_key = good[-2][0], good[-1][0]
    assert (second_key.duplicate, second_key.id) == (True, first_key.id)

    answered = {r.id for unit in [head, *good] for r in unit}
    ids, delivered = _stored(platform)
    assert ids == delivered == answered  # all committed, nothing of the bad one
    assert len(ids) == 32
    # The first unit alone; then the 33 queued ones as one group: tried whole (33 events),
    # then, once the bad one failed it, one by one in savepoints (33 calls, the bad one
    # included; the duplicate key makes no second row either way).
    assert writer.stats.groups == 2
    assert writer.stats.largest == 33
    assert writer.stats.fallbacks == 1
    assert gate.calls == [1, 33, *[1] * 33]
    assert len(woken) == 2  # one wake-up per group


async def test_a_group_of_good_publishes_is_one_write(
    platform_factory: Callable[..., Platform],
) -> None:
    platform = platform_factory()
    account = make_account(platform, url="https://hooks.example.com/callhook")
    gate = Gate(platform.publisher.write)
    writer: IngestWriter = GroupCommitter(platform.db, gate, name="test-writer")
    rest = [_request(account.id, seed) for seed in range(1, 41)]
    try:
        _, outcomes = await _held_group(writer, gate, _request(account.id, 0), rest)
    finally:
        await asyncio.to_thread(writer.close, 30)
    assert all(not isinstance(o, BaseException) and len(o) == 1 for o in outcomes)
    assert gate.calls == [1, 40]
    assert writer.stats.fallbacks == 0
    assert len(_stored(platform)[0]) == 41


async def test_an_unexpected_error_in_one_publish_fails_only_it(
    platform_factory: Callable[..., Platform],
) -> None:
    """Whatever a unit raises (here a bug in the write for one pbx_id) stays with that unit."""
    platform = platform_factory()
    account = make_account(platform, url="https://hooks.example.com/callhook")
    broken = _request(account.id, 5)
    poison = broken[0].pbx_id

    def write(conn: Connection, items: Sequence[PublishRequest]) -> list[Published]:
        if any(item.pbx_id == poison for item in items):
            raise ValueError("a bug")
        return platform.publisher.write(conn, items)

    gate = Gate(write)
    writer: IngestWriter = GroupCommitter(platform.db, gate, name="test-writer")
    rest = [_request(account.id, seed) for seed in range(1, 5)] + [broken]
    try:
        _, outcomes = await _held_group(writer, gate, _request(account.id, 0), rest)
    finally:
        await asyncio.to_thread(writer.close, 30)
    assert isinstance(outcomes[-1], ValueError)
    assert all(not isinstance(o, BaseException) for o in outcomes[:-1])
    assert len(_stored(platform)[0]) == 5


async def test_close_writes_what_is_queued_then_refuses(
    platform_factory: Callable[..., Platform],
) -> None:
    platform = platform_factory()
    account = make_account(platform, url="https://hooks.example.com/callhook")
    writer = ingest_writer(platform)
    pending = [asyncio.create_task(writer.submit(_request(account.id, s))) for s in range(5)]
    await asyncio.sleep(0)
    await asyncio.to_thread(writer.close, 30)
    assert all(len(r) == 1 for r in await asyncio.gather(*pending))
    with pytest.raises(RuntimeError, match="closed"):
        await writer.submit(_request(account.id, 9))
    assert len(_stored(platform)[0]) == 5


def test_many_concurrent_publishes_over_http_one_bad(
    platform_factory: Callable[..., Platform], tmp_path: Path
) -> None:
    """64 single publishes at once through a live server, one for an unknown account: that one
    gets the same 422 as when it is alone, every other one its 202 and its committed event."""
    platform = platform_factory()
    account = make_account(platform, url="https://hooks.example.com/callhook")
    token = make_token(platform, None, ["events.write"])
    bodies = [sample_event(account_id=account.id, seed=s) for s in range(64)]
    bad_at = 41
    bodies[bad_at] = {**bodies[bad_at], "account_id": "acc_nope"}

    async def send_all(base: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(
                            "/internal/v1/events",
                            json=body,
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        for body in bodies
                    )
                )
            )

    with serving(platform) as base:
        responses = asyncio.run(send_all(base))
        alone = httpx.post(
            f"{base}/internal/v1/events",
            json=bodies[bad_at],
            headers={"Authorization": f"Bearer {token}"},
        )

    bad = responses.pop(bad_at)
    assert bad.status_code == alone.status_code == 422
    assert (
        bad.json()["errors"] == alone.json()["errors"] == ["account_id: unknown account 'acc_nope'"]
    )
    assert [r.status_code for r in responses] == [202] * 63
    answered = {r.json()["data"]["events"][0]["id"] for r in responses}
    ids, delivered = _stored(platform)
    assert ids == delivered == answered
