"""The bench's reading of how busy the worker's event-loop thread was while it drained."""

from __future__ import annotations

import pytest
from bench.phases import loop_busy


def test_counts_only_samples_inside_the_sinks_window() -> None:
    # Start-up CPU (before the first arrival) and the stop (after the last) are left out.
    samples = [(99.0, 0.5), (100.0, 1.0), (101.0, 1.9), (102.0, 2.8), (103.0, 4.0)]
    window: dict[str, object] = {"first": 100.0, "last": 102.0, "count": 10}
    assert loop_busy(samples, window) == pytest.approx(0.9)


@pytest.mark.parametrize(
    "window",
    [
        {"first": None, "last": None, "count": 0},  # nothing arrived
        {"first": 100.0, "last": 100.5, "count": 3},  # one sample inside
        {"first": 200.0, "last": 300.0, "count": 3},  # no sample inside
    ],
)
def test_none_without_two_samples_inside(window: dict[str, object]) -> None:
    assert loop_busy([(100.0, 1.0), (101.0, 2.0)], window) is None
