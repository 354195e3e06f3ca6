"""Leases: which claimed jobs a worker holds, and which it lost, released or finished (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from callhook.delivery.leases import Leases

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@dataclass(frozen=True, eq=False)
class J:
    delivery_id: str
    endpoint_id: str = "ep_a"


def jobs(n: int, endpoint: str = "ep_a") -> list[J]:
    return [J(f"dlv_{endpoint}_{i}", endpoint) for i in range(n)]


def held(leases: Leases[J]) -> list[str]:
    return sorted(job.delivery_id for job in leases.to_renew())


def test_claimed_jobs_are_held_until_finished_or_released() -> None:
    leases: Leases[J] = Leases(LEASE)
    a, b, c = jobs(3)
    leases.hold([a, b, c], now=T0)
    assert len(leases) == 3
    leases.finish([a])
    leases.release([b])
    assert held(leases) == [c.delivery_id]
    assert not leases.holds(a)
    assert not leases.holds(b)
    assert leases.holds(c)
    assert leases.lost == 0


def test_a_job_not_renewed_is_lost_forgotten_and_counted() -> None:
    leases: Leases[J] = Leases(LEASE)
    a, b = jobs(2)
    leases.hold([a, b], now=T0)
    batch = leases.to_renew()
    lost = leases.renewed(batch, {a.delivery_id}, now=T0 + timedelta(seconds=10))
    assert lost == [b]
    assert leases.lost == 1
    assert held(leases) == [a.delivery_id]
    # Lost once is lost once: a later renewal that misses it again reports nothing.
    assert leases.renewed(batch, set(), now=T0 + timedelta(seconds=20)) == [a]
    assert leases.lost == 2


def test_a_renewal_that_extended_a_job_no_longer_held_is_orphaned() -> None:
    leases: Leases[J] = Leases(LEASE)
    a, b = jobs(2)
    leases.hold([a, b], now=T0)
    batch = leases.to_renew()
    assert not leases.orphaned(batch, {a.delivery_id, b.delivery_id})
    leases.finish([b])  # its result was dropped while the renewal ran
    assert not leases.orphaned(batch, {a.delivery_id})  # the renewal missed it: nothing left
    assert leases.orphaned(batch, {a.delivery_id, b.delivery_id})


def test_a_job_being_recorded_is_not_lost_when_its_renewal_misses_it() -> None:
    """The write of its result may have ended the lease while the renewal ran."""
    leases: Leases[J] = Leases(LEASE)
    (a,) = jobs(1)
    leases.hold([a], now=T0)
    batch = leases.to_renew()
    assert leases.start_recording([a]) == [a]
    assert not leases.is_unrecorded(a)
    assert leases.renewed(batch, set(), now=T0) == []
    assert leases.holds(a)
    leases.finish([a])
    assert len(leases) == 0
    assert leases.lost == 0


@pytest.mark.parametrize("gone", ["finished", "released"])
def test_a_job_done_with_while_its_renewal_ran_is_not_lost(gone: str) -> None:
    leases: Leases[J] = Leases(LEASE)
    (a,) = jobs(1)
    leases.hold([a], now=T0)
    batch = leases.to_renew()
    if gone == "finished":
        leases.start_recording([a])
        leases.finish([a])
    else:
        leases.release([a])
    assert leases.renewed(batch, set(), now=T0) == []
    assert leases.lost == 0


def test_news_of_an_old_claim_does_not_touch_a_new_claim_of_the_same_delivery() -> None:
    leases: Leases[J] = Leases(LEASE)
    old = J("dlv_1")
    leases.hold([old], now=T0)
    batch = leases.to_renew()
    leases.start_recording([old])
    leases.finish([old])
    new = J("dlv_1")  # retried later and claimed by this worker again
    leases.hold([new], now=T0 + timedelta(seconds=5))
    # The renewal of the old claim (its claim id is gone) must not make the new one lost.
    assert leases.renewed(batch, set(), now=T0 + timedelta(seconds=5)) == []
    assert leases.holds(new)
    assert not leases.holds(old)
    # Nor does finishing or releasing the old one again.
    leases.finish([old])
    leases.release([old])
    assert leases.is_unrecorded(new)
    assert leases.start_recording([old]) == []
    assert leases.is_unrecorded(new)


def test_only_held_jobs_are_marked_recording() -> None:
    leases: Leases[J] = Leases(LEASE)
    a, b = jobs(2)
    leases.hold([a], now=T0)
    assert leases.start_recording([a, b]) == [a]
    assert not leases.is_unrecorded(b)  # not held at all


@pytest.mark.parametrize(
    ("seconds", "interval"), [(30, 10.0), (0.3, 0.1), (0.09, 0.05), (0.001, 0.05)]
)
def test_renewals_come_every_third_of_a_lease_but_not_too_often(
    seconds: float, interval: float
) -> None:
    assert Leases[J](timedelta(seconds=seconds)).renew_interval == pytest.approx(interval)


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_lease_must_last(seconds: int) -> None:
    with pytest.raises(ValueError, match="lease"):
        Leases[J](timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("renewed_at", "checked_at", "lapsed"),
    [
        (None, 29.9, False),  # the claim's lease still runs
        (None, 30, True),  # ran out, nothing renewed it
        (10, 30, False),  # a renewal at 10 s runs until 40 s
        (10, 40, True),
    ],
)
def test_a_lease_lapses_when_no_renewal_gets_through_in_time(
    renewed_at: float | None, checked_at: float, lapsed: bool
) -> None:
    leases: Leases[J] = Leases(LEASE)
    (a,) = jobs(1)
    leases.hold([a], now=T0)
    if renewed_at is not None:
        leases.renewed(leases.to_renew(), {a.delivery_id}, now=T0 + timedelta(seconds=renewed_at))
    assert leases.lapsed(T0 + timedelta(seconds=checked_at)) == ([a] if lapsed else [])


def test_a_late_renewal_report_does_not_shorten_a_lease() -> None:
    leases: Leases[J] = Leases(LEASE)
    (a,) = jobs(1)
    leases.hold([a], now=T0 + timedelta(seconds=20))
    leases.renewed([a], {a.delivery_id}, now=T0)  # a renewal taken before the claim
    assert leases.lapsed(T0 + timedelta(seconds=40)) == []


def test_held_jobs_are_counted_per_endpoint() -> None:
    leases: Leases[J] = Leases(LEASE)
    leases.hold(jobs(3, "ep_a") + jobs(1, "ep_b"), now=T0)
    assert leases.held_per_endpoint() == {"ep_a": 3, "ep_b": 1}


class LeaseLife(RuleBasedStateMachine):
    """Any order of claims, recordings, releases and renewals: every held job ends exactly
    once (finished, released or lost), a job being recorded is never lost, and the count of
    lost jobs is the number reported."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: Leases[J] = Leases(LEASE)
        self.now = T0
        self.claims = 0
        self.live: list[J] = []  # held by the model: claimed, not ended
        self.recording: list[J] = []
        self.ended: dict[int, str] = {}  # id(job) → how it ended
        self.all: list[J] = []
        self.reported_lost = 0
        self.snapshots: list[list[J]] = []

    @rule(n=st.integers(1, 4), delivery=st.integers(0, 5))
    def claim(self, n: int, delivery: int) -> None:
        held_ids = {j.delivery_id for j in self.live}
        new = [J(f"dlv_{delivery + i}") for i in range(n) if f"dlv_{delivery + i}" not in held_ids]
        self.leases.hold(new, now=self.now)
        self.live += new
        self.all += new

    @rule(data=st.data())
    def record(self, data: st.DataObject) -> None:
        candidates = [j for j in self.live if j not in self.recording]
        picked = data.draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
        assert self.leases.start_recording(picked) == picked
        self.recording += picked

    @precondition(lambda self: bool(self.recording))
    @rule()
    def finish(self) -> None:
        self.leases.finish(self.recording)
        for job in self.recording:
            self._end(job, "finished")
        self.recording = []

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        candidates = [j for j in self.live if j not in self.recording]
        picked = data.draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
        self.leases.release(picked)
        for job in picked:
            self._end(job, "released")

    @rule()
    def snapshot(self) -> None:
        self.snapshots.append(self.leases.to_renew())

    @precondition(lambda self: bool(self.snapshots))
    @rule(data=st.data())
    def renewal_returns(self, data: st.DataObject) -> None:
        batch = self.snapshots.pop(0)
        ids = [j.delivery_id for j in batch]
        renewed = set(data.draw(st.lists(st.sampled_from(ids), unique=True))) if ids else set()
        self.now += timedelta(seconds=1)
        lost = self.leases.renewed(batch, renewed, now=self.now)
        self.reported_lost += len(lost)
        for job in lost:
            assert job in self.live
            assert job not in self.recording
            assert job.delivery_id not in renewed
            self._end(job, "lost")

    def _end(self, job: J, how: str) -> None:
        assert id(job) not in self.ended, f"{job} ended twice"
        self.ended[id(job)] = how
        self.live.remove(job)

    @invariant()
    def held_is_what_is_live(self) -> None:
        assert sorted(map(id, self.leases.to_renew())) == sorted(map(id, self.live))
        assert self.leases.lost == self.reported_lost
        for job in self.all:
            assert self.leases.holds(job) == (job in self.live)
            assert self.leases.is_unrecorded(job) == (
                job in self.live and job not in self.recording
            )


TestLeaseLife = LeaseLife.TestCase
