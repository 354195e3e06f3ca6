"""Token bucket, in-flight cap and Retry-After slow-down for one endpoint."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core import throttle as t

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(("rate", "burst"), [(50, 25), (1, 1), (0.1, 1), (1000, 500)])
def test_burst(rate: float, burst: float) -> None:
    assert t.burst_for(rate) == burst


@pytest.mark.parametrize("rate", [0, -1, math.inf, math.nan])
def test_burst_refuses_nonsense(rate: float) -> None:
    with pytest.raises(ValueError):
        t.burst_for(rate)


def test_take_and_refill() -> None:
    bucket = t.full(50, T0)
    granted, bucket = t.take(bucket, 50, T0, 100)
    assert granted == 25
    assert bucket.tokens == 0
    assert t.take(bucket, 50, T0, 10)[0] == 0
    assert t.next_token_at(bucket, 50, T0) == T0 + timedelta(seconds=0.02)
    granted, bucket = t.take(bucket, 50, T0 + timedelta(seconds=0.1), 100)
    assert granted == 5
    # Never more than the burst, however long it rested.
    assert t.take(bucket, 50, T0 + timedelta(days=1), 1000)[0] == 25


def test_a_clock_going_backwards_adds_nothing() -> None:
    bucket = t.Bucket(0.5, T0)
    assert t.refill(bucket, 10, T0 - timedelta(seconds=100)) == bucket


@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    claims=st.lists(
        st.tuples(st.floats(min_value=0, max_value=2), st.integers(0, 300)), max_size=200
    ),
)
def test_never_more_than_rate_times_duration_plus_burst(
    rate: float, claims: list[tuple[float, int]]
) -> None:
    """Whatever the claim pattern, tokens granted over [0, T] ≤ burst + rate × T."""
    bucket, now, granted_total = t.full(rate, T0), T0, 0
    for gap, want in claims:
        now += timedelta(seconds=gap)
        granted, bucket = t.take(bucket, rate, now, want)
        assert 0 <= granted <= want
        granted_total += granted
        elapsed = (now - T0).total_seconds()
        assert granted_total <= t.burst_for(rate) + rate * elapsed + 1e-6


def test_allowance_combines_cap_and_bucket() -> None:
    n, bucket = t.allowance(
        want=100, bucket=None, rate=None, max_in_flight=None, in_flight=0, now=T0
    )
    assert (n, bucket) == (100, None)
    n, _ = t.allowance(want=100, bucket=None, rate=None, max_in_flight=8, in_flight=5, now=T0)
    assert n == 3
    n, bucket = t.allowance(want=100, bucket=None, rate=10, max_in_flight=8, in_flight=0, now=T0)
    assert n == 5
    assert bucket is not None
    assert bucket.tokens == 0
    assert t.room(4, 9) == 0


def test_slow_down_is_capped() -> None:
    assert t.slowed_until(T0, 120) == T0 + timedelta(seconds=120)
    assert t.slowed_until(T0, 1e9) == T0 + timedelta(seconds=t.MAX_SLOW_DOWN)
    assert t.slowed_until(T0, -5) == T0


CAPS = t.Caps(max_rate_limit=100, max_in_flight=10)


@pytest.mark.parametrize(
    ("rate", "in_flight", "bad"),
    [
        (None, None, set()),
        (50, 5, set()),
        (0.5, 1, set()),
        (100, 10, set()),
        (0.01, None, set()),
        (0, None, {"rate_limit"}),
        (0.009, None, {"rate_limit"}),
        (1e-300, None, {"rate_limit"}),
        (5e-324, None, {"rate_limit"}),
        (-1, None, {"rate_limit"}),
        (100.5, None, {"rate_limit"}),
        (math.inf, None, {"rate_limit"}),
        (math.nan, None, {"rate_limit"}),
        (True, None, {"rate_limit"}),
        (None, 0, {"max_in_flight"}),
        (None, 11, {"max_in_flight"}),
        (None, True, {"max_in_flight"}),
        (0, 0, {"rate_limit", "max_in_flight"}),
    ],
)
def test_check_limits(rate: float | None, in_flight: int | None, bad: set[str]) -> None:
    assert set(t.check_limits(rate, in_flight, CAPS)) == bad


@given(
    rate=st.floats(min_value=5e-324, max_value=1e6, allow_nan=False, allow_infinity=False),
    tokens=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
def test_the_next_token_is_a_time_whatever_the_stored_rate(rate: float, tokens: float) -> None:
    # Rates below MIN_RATE_LIMIT are refused on the way in, but a stored one must still not
    # stop the claim (1e-300/s once overflowed timedelta in every claim of every endpoint).
    now = datetime(2026, 1, 1, tzinfo=UTC)
    at = t.next_token_at(t.Bucket(tokens=tokens, updated_at=now), rate, now)
    assert now <= at <= now + timedelta(seconds=1 / t.MIN_RATE_LIMIT)
