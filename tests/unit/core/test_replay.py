"""Replay on recovery: failed during the outage, within age and count, in creation order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from callhook.core.replay import FailedDelivery, ReplayPolicy, select

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
OUTAGE = T0 - timedelta(hours=10)


def _d(name: str, created_h: float, failed_h: float) -> FailedDelivery:
    return FailedDelivery(name, T0 + timedelta(hours=created_h), T0 + timedelta(hours=failed_h))


def test_only_failed_during_the_outage_and_young_enough_in_creation_order() -> None:
    candidates = [
        _d("c", -3, -1),
        _d("before-outage", -40, -11),  # failed before the streak began
        _d("a", -30, -9),  # created before the outage, failed during it
        _d("too-old", -80, -5),
        _d("b", -5, -2),
    ]
    policy = ReplayPolicy(max_age=timedelta(hours=72))
    assert select(candidates, outage_start=OUTAGE, now=T0, policy=policy) == ["a", "b", "c"]


def test_count_bound_keeps_the_newest() -> None:
    candidates = [_d(f"d{i}", -9 + i * 0.1, -1) for i in range(10)]
    policy = ReplayPolicy(max_count=3)
    assert select(candidates, outage_start=OUTAGE, now=T0, policy=policy) == ["d7", "d8", "d9"]
    assert select(candidates, outage_start=OUTAGE, now=T0, policy=ReplayPolicy(max_count=0)) == []


@given(
    st.lists(
        st.tuples(st.floats(min_value=-100, max_value=0), st.floats(min_value=-20, max_value=0)),
        max_size=50,
    ),
    st.integers(min_value=0, max_value=20),
)
def test_bounds_always_hold(times: list[tuple[float, float]], count: int) -> None:
    candidates = [_d(f"x{i}", c, max(c, f)) for i, (c, f) in enumerate(times)]
    policy = ReplayPolicy(max_age=timedelta(hours=48), max_count=count)
    chosen = select(candidates, outage_start=OUTAGE, now=T0, policy=policy)
    by_id = {c.id: c for c in candidates}
    assert len(chosen) <= count
    created = [by_id[i].created_at for i in chosen]
    assert created == sorted(created)
    for i in chosen:
        assert by_id[i].failed_at >= OUTAGE
        assert by_id[i].created_at >= T0 - timedelta(hours=48)
