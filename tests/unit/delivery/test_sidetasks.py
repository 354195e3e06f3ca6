"""Side tasks are watched: one that raises is restarted; one that returns is done."""

from __future__ import annotations

import asyncio

import pytest

from callhook.delivery import sidetasks


async def test_a_side_task_that_raises_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sidetasks, "RESTART_DELAYS", (0.001, 0.004))
    stop = asyncio.Event()
    runs: list[int] = []

    async def flaky(stop: asyncio.Event) -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("boom")
        await stop.wait()

    task = asyncio.create_task(sidetasks.watched(flaky, stop))
    while len(runs) < 3:
        await asyncio.sleep(0.001)
    assert not task.done()
    stop.set()
    await task
    assert runs == [0, 1, 2]


async def test_a_side_task_that_returns_is_not_restarted() -> None:
    runs: list[int] = []

    async def nothing_to_do(_stop: asyncio.Event) -> None:
        runs.append(1)

    await sidetasks.watched(nothing_to_do, asyncio.Event())
    assert runs == [1]
