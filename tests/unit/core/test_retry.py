"""The retry schedule: pure, with the clock reading and randomness passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core import retry

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


class Fixed:
    """Randomness that always returns the same point of the range (0 = low, 1 = high)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.at


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [
        (1, 5),
        (2, 30),
        (3, 120),
        (4, 600),
        (5, 1800),
        (6, 3600),
        (7, 7200),
        (8, 14400),
        (9, 28800),
        (10, 28800),
        (15, 28800),
    ],
)
def test_base_delays(attempt: int, seconds: float) -> None:
    assert retry.base_delay(attempt) == seconds


def test_schedule_without_jitter_ends_within_24_hours() -> None:
    now, attempts = T0, 1
    times = [0.0]
    while (
        when := retry.next_attempt_at(
            policy="exponential", attempt_number=attempts, created_at=T0, now=now, rng=Fixed(0.5)
        )
    ) is not None:
        now, attempts = when, attempts + 1
        times.append((now - T0).total_seconds())
    assert times[:6] == [0, 5, 35, 155, 755, 2555]
    assert times[-1] <= 24 * 3600
    assert times[-1] + 28800 > 24 * 3600  # the next one would fall outside the window
    assert attempts == 11


@pytest.mark.parametrize(("at", "factor"), [(0.0, 0.8), (1.0, 1.2)])
def test_jitter_is_plus_minus_20_percent(at: float, factor: float) -> None:
    when = retry.next_attempt_at(
        policy="exponential", attempt_number=2, created_at=T0, now=T0, rng=Fixed(at)
    )
    assert when == T0 + timedelta(seconds=30 * factor)


def test_none_policy_never_retries() -> None:
    assert (
        retry.next_attempt_at(
            policy="none", attempt_number=1, created_at=T0, now=T0, rng=random.Random(0)
        )
        is None
    )


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(120, 120), (1, 5), (10_000, retry.MAX_RETRY_AFTER), (None, 5)],
)
def test_retry_after_is_honoured_within_bounds(retry_after: float | None, expected: float) -> None:
    when = retry.next_attempt_at(
        policy="exponential",
        attempt_number=1,
        created_at=T0,
        now=T0,
        rng=Fixed(0.5),
        retry_after=retry_after,
    )
    assert when == T0 + timedelta(seconds=expected)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("  7 ", 7.0),
        ("Thu, 15 Jan 2026 10:32:00 GMT", 120.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("Thu, 15 Jan 2026 10:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert retry.parse_retry_after(header, now=T0) == expected


@given(attempt=st.integers(1, 50), elapsed=st.floats(0, 30 * 3600), seed=st.integers(0, 2**32))
def test_next_attempt_is_after_now_and_inside_the_window(
    attempt: int, elapsed: float, seed: int
) -> None:
    now = T0 + timedelta(seconds=elapsed)
    when = retry.next_attempt_at(
        policy="exponential",
        attempt_number=attempt,
        created_at=T0,
        now=now,
        rng=random.Random(seed),
    )
    if when is not None:
        assert when > now
        assert when <= T0 + retry.WINDOW


def test_unknown_policy_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown retry policy"):
        retry.next_attempt_at(
            policy="linear", attempt_number=1, created_at=T0, now=T0, rng=Fixed(0)
        )
