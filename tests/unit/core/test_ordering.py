"""Per-call ordering, priority and expiry rules (pure), and the receiver-side order audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callhook.core import ordering as o
from callhook.errors import PayloadInvalid
from callhook.events.names import SUBSCRIBABLE_EVENTS

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "group"),
    [
        ("incoming_call_start", o.EventGroup.CALL_CONTROL),
        ("incoming_call_start_chain_member_call", o.EventGroup.CALL_CONTROL),
        ("incoming_call_end_chain_member_call", o.EventGroup.CALL_CONTROL),
        ("incoming_call_answer", o.EventGroup.CALL_CONTROL),
        ("incoming_call_end", o.EventGroup.CALL_CONTROL),
        ("outgoing_call_start", o.EventGroup.CALL_CONTROL),
        ("outgoing_call_answer", o.EventGroup.CALL_CONTROL),
        ("outgoing_call_end", o.EventGroup.CALL_CONTROL),
        ("test", o.EventGroup.CALL_CONTROL),
        ("speech", o.EventGroup.BULK),
        ("summary", o.EventGroup.BULK),
        ("tags", o.EventGroup.BULK),
        ("rating", o.EventGroup.BULK),
        ("voicemail", o.EventGroup.BULK),
        ("sms", o.EventGroup.BULK),
        ("not_an_event", o.EventGroup.BULK),
    ],
)
def test_groups(event: str, group: o.EventGroup) -> None:
    assert o.group_of(event) is group


def test_every_subscribable_event_has_a_group_and_both_groups_are_used() -> None:
    groups = {o.group_of(e) for e in SUBSCRIBABLE_EVENTS}
    assert groups == set(o.EventGroup)


def test_claim_key_ages_bulk_only() -> None:
    aging = timedelta(seconds=30)
    assert o.claim_key(o.EventGroup.CALL_CONTROL, T0, aging) == T0
    assert o.claim_key(o.EventGroup.BULK, T0, aging) == T0 + aging


@given(
    bulk_due=st.integers(0, 10_000),
    cc_due=st.integers(0, 10_000),
    aging=st.integers(0, 600),
)
def test_priority_with_aging_never_starves(bulk_due: int, cc_due: int, aging: int) -> None:
    """Call-control is ahead of bulk that fell due less than ``aging`` before it; bulk that fell
    due more than ``aging`` before a call-control event is ahead of it (no starvation)."""
    age = timedelta(seconds=aging)
    bulk = o.claim_key(o.EventGroup.BULK, T0 + timedelta(seconds=bulk_due), age)
    cc = o.claim_key(o.EventGroup.CALL_CONTROL, T0 + timedelta(seconds=cc_due), age)
    if cc_due - bulk_due < aging:
        assert cc < bulk
    if cc_due - bulk_due > aging:
        assert bulk < cc


@pytest.mark.parametrize(
    ("ordering", "call_id", "taken", "expected"),
    [
        (o.Ordering.PER_CALL, "c1", False, o.PENDING_HOLDER),
        (o.Ordering.PER_CALL, "c1", True, o.WAITING),
        (o.Ordering.PER_CALL, None, True, o.PENDING_FREE),
        (o.Ordering.NONE, "c1", True, o.PENDING_FREE),
        (o.Ordering.NONE, "c1", False, o.PENDING_FREE),
    ],
)
def test_place(
    ordering: o.Ordering, call_id: str | None, taken: bool, expected: o.Placement
) -> None:
    assert o.place(ordering, call_id, taken) == expected


def test_bound_and_expiry() -> None:
    bound = timedelta(minutes=5)
    assert not o.bound_passed(T0, T0 + bound - timedelta(seconds=1), bound)
    assert o.bound_passed(T0, T0 + bound, bound)
    assert not o.is_expired(T0, T0 + timedelta(days=3), None)
    assert not o.is_expired(T0, T0 + timedelta(minutes=2), timedelta(minutes=2))
    assert o.is_expired(T0, T0 + timedelta(minutes=2, seconds=1), timedelta(minutes=2))
    expiry = o.Expiry(call_control=timedelta(minutes=2))
    assert expiry.max_age(o.EventGroup.CALL_CONTROL) == timedelta(minutes=2)
    assert expiry.max_age(o.EventGroup.BULK) is None
    assert o.OrderingPolicy() == o.OrderingPolicy(o.Ordering.PER_CALL, o.DEFAULT_BOUND)


@pytest.mark.parametrize("value", ["per_call", "none"])
def test_parse_ordering(value: str) -> None:
    assert o.parse_ordering(value) == value


@pytest.mark.parametrize("value", ["PER_CALL", "fifo", "", None, 1, ["per_call"]])
def test_parse_ordering_refuses_naming_the_field(value: object) -> None:
    with pytest.raises(PayloadInvalid) as info:
        o.parse_ordering(value)
    assert info.value.field == "ordering"


@pytest.mark.parametrize("value", [1, 300, o.MAX_SECONDS])
def test_parse_seconds(value: int) -> None:
    assert o.parse_seconds(value, field_name="ordering_bound_seconds", optional=False) == value


@pytest.mark.parametrize(
    "value", [0, -1, o.MAX_SECONDS + 1, 10**30, 1.5, "300", True, None, float("nan")]
)
def test_parse_seconds_refuses_naming_the_field(value: object) -> None:
    with pytest.raises(PayloadInvalid) as info:
        o.parse_seconds(value, field_name="ordering_bound_seconds", optional=False)
    assert info.value.field == "ordering_bound_seconds"


def test_parse_seconds_optional_takes_null() -> None:
    assert o.parse_seconds(None, field_name="max_age.bulk", optional=True) is None
    with pytest.raises(PayloadInvalid):
        o.parse_seconds(-5, field_name="max_age.bulk", optional=True)


# --- The audit --------------------------------------------------------------------------------
def test_audit_in_order_and_duplicates_are_fine() -> None:
    audit = o.OrderAudit(expected={"c": frozenset({1, 2, 3})})
    for seq in (1, 2):
        audit.arrive(o.Receipt("c", seq, None))
        audit.finish("c", seq)
    audit.arrive(o.Receipt("c", 1, None))  # a duplicate after a crash
    audit.arrive(o.Receipt("c", 3, None))
    assert audit.violations == []
    assert audit.arrivals == 4


def test_audit_counts_a_later_event_before_an_unfinished_one() -> None:
    audit = o.OrderAudit(expected={"c": frozenset({1, 2, 3})})
    audit.arrive(o.Receipt("c", 1, None))
    audit.arrive(o.Receipt("c", 2, None))  # 1 has not finished
    assert audit.violations == [("c", 1, 2)]


def test_audit_accepts_an_announced_gap_and_what_follows_it() -> None:
    audit = o.OrderAudit(expected={"c": frozenset({1, 2, 3, 4})})
    audit.arrive(o.Receipt("c", 1, None))
    audit.finish("c", 1)
    audit.arrive(o.Receipt("c", 2, None))  # 2 keeps failing
    audit.arrive(o.Receipt("c", 3, 2))  # released past the bound, gap announced
    audit.finish("c", 3)
    audit.arrive(o.Receipt("c", 4, None))
    assert audit.violations == []
    assert audit.gaps_announced == 1


def test_audit_ignores_sequences_the_endpoint_does_not_get() -> None:
    audit = o.OrderAudit(expected={"c": frozenset({2, 5})})
    audit.arrive(o.Receipt("c", 2, None))
    audit.finish("c", 2)
    audit.arrive(o.Receipt("c", 5, None))
    assert audit.violations == []


# --- A model of the line, driven by random schedules ------------------------------------------
@dataclass
class LineModel:
    """The store's rules (place, hand on, bypass) over one endpoint, in memory."""

    ordering: o.Ordering
    status: dict[tuple[str, int], str] = field(default_factory=dict)
    holder: dict[str, int] = field(default_factory=dict)
    since: dict[str, int] = field(default_factory=dict)
    previous: dict[tuple[str, int], int] = field(default_factory=dict)

    def publish(self, call: str, seq: int, now: int) -> None:
        taken = call in self.holder or any(
            c == call and s == "waiting" for (c, _), s in self.status.items()
        )
        placement = o.place(self.ordering, call, taken)
        self.status[(call, seq)] = placement.status
        if placement.holds_line:
            self.holder[call], self.since[call] = seq, now

    def claimable(self) -> list[tuple[str, int]]:
        return sorted(k for k, s in self.status.items() if s == "pending")

    def finish(self, call: str, seq: int, status: str, now: int) -> None:
        self.status[(call, seq)] = status
        if self.holder.get(call) == seq:
            del self.holder[call]
            self._hand_on(call, now, previous=None)

    def _hand_on(self, call: str, now: int, previous: int | None) -> None:
        waiting = sorted(s for (c, s), st_ in self.status.items() if c == call and st_ == "waiting")
        if waiting:
            self.status[(call, waiting[0])] = "pending"
            self.holder[call], self.since[call] = waiting[0], now
            if previous is not None:
                self.previous[(call, waiting[0])] = previous

    def sweep(self, now: int, bound: int) -> None:
        for call, seq in list(self.holder.items()):
            if o.bound_passed(
                T0 + timedelta(seconds=self.since[call]),
                T0 + timedelta(seconds=now),
                timedelta(seconds=bound),
            ):
                waiting = [
                    s for (c, s), st_ in self.status.items() if c == call and st_ == "waiting"
                ]
                if waiting:
                    del self.holder[call]
                    self._hand_on(call, now, previous=seq)


steps = st.lists(
    st.tuples(st.sampled_from(["publish", "attempt", "sweep"]), st.integers(0, 3), st.booleans()),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps, ordering=st.sampled_from(list(o.Ordering)))
def test_model_receiver_never_sees_a_later_event_first(
    steps: list[tuple[str, int, bool]], ordering: o.Ordering
) -> None:
    """Random publishes, attempts that succeed or fail for good, and sweeps past the bound: a
    receiver of a per_call endpoint never sees a violation the audit can count."""
    published: dict[str, int] = {}
    for kind, call_n, _ in steps:
        if kind == "publish":
            published[f"c{call_n}"] = published.get(f"c{call_n}", 0) + 1
    expected = {c: frozenset(range(1, n + 1)) for c, n in published.items()}
    # Replay: attempts pick the first claimable delivery; a failed-for-good one also finishes.
    model = LineModel(ordering)
    audit = o.OrderAudit(expected=expected)
    published = {}
    for now, (kind, call_n, ok) in enumerate(steps):
        call = f"c{call_n}"
        if kind == "publish":
            published[call] = published.get(call, 0) + 1
            model.publish(call, published[call], now)
        elif kind == "sweep":
            model.sweep(now, bound=5)
        elif model.claimable():
            c, s = model.claimable()[call_n % len(model.claimable())]
            audit.arrive(o.Receipt(c, s, model.previous.get((c, s))))
            if ok:
                audit.finish(c, s)
                model.finish(c, s, "delivered", now)
            elif now % 3 == 0:
                audit.finish(c, s)
                model.finish(c, s, "failed", now)
    if ordering is o.Ordering.PER_CALL:
        assert audit.violations == []


def test_model_without_ordering_is_caught_by_the_audit() -> None:
    """The audit can fail: with ``none`` two events of a call are claimable together."""
    model = LineModel(o.Ordering.NONE)
    model.publish("c", 1, 0)
    model.publish("c", 2, 0)
    audit = o.OrderAudit(expected={"c": frozenset({1, 2})})
    for c, s in reversed(model.claimable()):
        audit.arrive(o.Receipt(c, s, None))
    assert audit.violations == [("c", 1, 2)]


def test_audit_without_expected_counts_every_lower_sequence() -> None:
    audit = o.OrderAudit()
    audit.arrive(o.Receipt("c", 1, None))
    audit.finish("c", 1)
    audit.arrive(o.Receipt("c", 3, None))
    assert audit.violations == [("c", 2, 3)]
