"""The ordering sink's bookkeeping (``bench.order_sink.State``) with a flaky receiver: a
refused event is not finished, so a later event of its call arriving before its retry is a
violation; its retry is no duplicate; a re-send after a 200 is one."""

from __future__ import annotations

import orjson
from bench.order_sink import State


def _body(event_id: str, sequence: int) -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "event": "incoming_call_start",
            "created_at": "2026-11-30T23:00:00Z",
            "call_id": "c1",
            "sequence": sequence,
        }
    )


def test_a_refused_event_holds_its_call_until_its_retry_is_answered() -> None:
    state = State((1.0, 1.0), seed=1, fail_first=1.0)  # every first arrival refused
    line, refuse = state.arrive(b"/hook", _body("evt_1", 1), None)
    assert refuse
    state.answered(line, ok=False)
    assert (state.count, state.refused, state.duplicates) == (0, 1, 0)

    line, refuse = state.arrive(b"/hook", _body("evt_1", 1), None)  # the retry
    assert not refuse
    state.answered(line, ok=True)
    assert (state.count, state.refused, state.duplicates) == (1, 1, 0)
    assert state.audit.violations == []

    line, refuse = state.arrive(b"/hook", _body("evt_1", 1), None)  # a re-send after a 200
    assert not refuse
    assert state.duplicates == 1


def test_a_later_event_before_the_retry_is_a_violation() -> None:
    state = State((1.0, 1.0), seed=1, fail_first=1.0)
    line, _ = state.arrive(b"/hook", _body("evt_1", 1), None)
    state.answered(line, ok=False)
    state.arrive(b"/hook", _body("evt_2", 2), None)
    assert state.audit.violations == [("/hook|c1", 1, 2)]


def test_without_failures_nothing_is_refused_and_a_reset_replays_the_same_delays() -> None:
    state = State((1.0, 20.0), seed=3)
    delays = [state.delay() for _ in range(5)]
    for n in range(1, 4):
        line, refuse = state.arrive(b"/hook", _body(f"evt_{n}", n), None)
        assert not refuse
        state.answered(line, ok=True)
    assert (state.count, state.refused, state.audit.violations) == (3, 0, [])
    state.reset()
    assert [state.delay() for _ in range(5)] == delays
