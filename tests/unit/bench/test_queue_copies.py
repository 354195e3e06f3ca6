"""``bench.queue_copies``: which databases a later run may take for abandoned ones."""

from __future__ import annotations

import pytest
from bench import queue_copies
from bench.queue_copies import QueueCopies


@pytest.mark.parametrize("suffix", ["source", "unordered", "1", "12"])
def test_names_it_makes_are_recognised_with_their_run(suffix: str) -> None:
    q = QueueCopies("postgresql")
    m = queue_copies._NAME.match(f"{q.stem}_{suffix}")
    assert m is not None
    assert m["run"] == q.run


@pytest.mark.parametrize(
    "name",
    [
        "test",
        "postgres",
        "callhook_bench",
        "callhook_bench_1234abcd",
        "callhook_bench_zzzzzzzz_source",
        "bench_flaky_123_abcdef_source",
        "bench_reports_123_c0ffee_v2",
        "my_callhook_bench_1234abcd_source",
    ],
)
def test_other_names_are_left_alone(name: str) -> None:
    assert queue_copies._NAME.match(name) is None


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown database"):
        QueueCopies("mysql")
