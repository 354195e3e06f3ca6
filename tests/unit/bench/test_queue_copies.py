"""``bench.queue_copies``: which databases a later run may take for abandoned ones."""

from __future__ import annotations

import os

import pytest
from bench import queue_copies
from bench.queue_copies import QueueCopies


@pytest.mark.parametrize("prefix", ["flaky", "flaky_pg", "order"])
@pytest.mark.parametrize("suffix", ["source", "0", "12"])
def test_names_it_makes_are_recognised_with_their_pid(prefix: str, suffix: str) -> None:
    name = f"{QueueCopies(prefix, 'postgresql').stem}_{suffix}"
    m = queue_copies._NAME.match(name)
    assert m is not None
    assert int(m["pid"]) == os.getpid()


@pytest.mark.parametrize(
    "name",
    ["test", "postgres", "bench", "bench_123", "bench_x_123_zzzzzz_source", "mybench_x_1_abcdef_0"],
)
def test_other_names_are_left_alone(name: str) -> None:
    assert queue_copies._NAME.match(name) is None


def test_a_running_process_is_alive_and_a_reaped_one_is_not() -> None:
    assert queue_copies._alive(os.getpid())
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert not queue_copies._alive(pid)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown database"):
        QueueCopies("flaky", "mysql")
