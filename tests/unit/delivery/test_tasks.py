"""Tasks: a worker's named tasks, watched — the first failure stops the worker and is its reason."""

from __future__ import annotations

import asyncio

import pytest

from callhook.delivery.tasks import Tasks
from callhook.errors import WorkerFailed


class Boom(RuntimeError):
    pass


async def fail_with(message: str) -> None:
    raise Boom(message)


async def wait_on(event: asyncio.Event) -> None:
    await event.wait()


async def test_a_task_that_dies_stops_the_worker_and_is_raised_chained() -> None:
    stop = asyncio.Event()
    tasks = Tasks(stop, worker_id="w1")
    waiting = tasks.start("lease renewer", wait_on(asyncio.Event()))
    dying = tasks.start("results flusher", fail_with("disk on fire"))
    await tasks.settle([dying])
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    assert stop.is_set()
    with pytest.raises(WorkerFailed) as failed:
        tasks.raise_failure()
    assert failed.value.task == "results flusher"
    assert isinstance(failed.value.__cause__, Boom)
    assert failed.value.message == (
        "delivery worker stopped: its results flusher failed (Boom: disk on fire)"
    )
    await tasks.cancel([waiting])
    assert waiting.cancelled()


async def test_the_first_failure_is_the_reason_later_ones_are_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks(asyncio.Event(), worker_id="w1")
    first = tasks.start("claim loop", fail_with("first"))
    await tasks.settle([first])
    await asyncio.sleep(0)
    await tasks.guard("final flush", fail_with("second"))
    with pytest.raises(WorkerFailed, match="claim loop") as failed:
        tasks.raise_failure()
    assert str(failed.value.__cause__) == "first"
    logged = [getattr(r, "task", None) for r in caplog.records if r.levelname == "ERROR"]
    assert logged == ["claim loop", "final flush"]


@pytest.mark.parametrize("how", ["returned", "cancelled"])
async def test_tasks_that_end_without_an_exception_are_not_failures(how: str) -> None:
    stop = asyncio.Event()
    tasks = Tasks(stop, worker_id="w1")
    if how == "returned":
        done = asyncio.Event()
        done.set()
        await tasks.settle([tasks.start("stop relay", wait_on(done))])
    else:
        await tasks.cancel([tasks.start("pruner", wait_on(asyncio.Event()))])
    await asyncio.sleep(0)
    assert not stop.is_set()
    tasks.raise_failure()  # nothing to raise
