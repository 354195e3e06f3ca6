"""Call scenarios and SMS exchanges: causal order, consistent ids, valid payloads, for any seed."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callhook.errors import InvalidRequest
from callhook.events import (
    ALL_EVENTS,
    SCENARIOS,
    ScheduledEvent,
    call_id_of,
    call_scenario,
    sample_data,
    sms_exchange,
    validate_publish_request,
)

# One letter per event, so a scenario's shape is a string a regex can check.
LETTER: Final = {
    "incoming_call_start": "S",
    "incoming_call_start_chain_member_call": "m",
    "incoming_call_end_chain_member_call": "e",
    "incoming_call_answer": "A",
    "incoming_call_end": "E",
    "outgoing_call_start": "o",
    "outgoing_call_answer": "a",
    "outgoing_call_end": "x",
    "voicemail": "v",
    "tags": "t",
    "speech": "p",
    "summary": "s",
    "rating": "r",
}
SHAPE: Final = {
    "answered": r"SmAeEpsrt{1,2}",
    "chain-hunt": r"S(me){1,3}mAeEpsrt{1,2}",
    "missed-to-voicemail": r"S[me]{2,6}Ev",
    "outbound": r"oaxpsr",
}
# The data field that holds the moment each event happens (voicemail's recorded_at is earlier).
WHEN_FIELD: Final = {
    "incoming_call_start": "started_at",
    "incoming_call_start_chain_member_call": "ringing_at",
    "incoming_call_end_chain_member_call": "ended_at",
    "incoming_call_answer": "answered_at",
    "incoming_call_end": "ended_at",
    "outgoing_call_start": "started_at",
    "outgoing_call_answer": "answered_at",
    "outgoing_call_end": "ended_at",
    "tags": "updated_at",
    "speech": "completed_at",
    "summary": "generated_at",
    "rating": "rated_at",
    "sms": "sent_at",
    "test": "timestamp",
}

seeds = st.integers(min_value=0, max_value=2**64 - 1)
starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _close(a: datetime, b: datetime) -> bool:
    """``a`` is ``b`` as delivered: truncated to whole milliseconds."""
    return a == b.replace(microsecond=b.microsecond // 1000 * 1000)


def _check_common(events: list[ScheduledEvent], start: datetime) -> None:
    offsets = [e.offset for e in events]
    assert offsets[0] == 0
    assert offsets == sorted(offsets)
    keys = [(e.event, e.pbx_id) for e in events]
    assert len(set(keys)) == len(keys), "(event, pbx_id) must identify one event"
    for e in events:
        request = {"event": e.event, "pbx_id": e.pbx_id, "data": e.data}
        assert validate_publish_request(request)["data"] == e.data
        field = WHEN_FIELD.get(e.event)
        if field is not None:
            assert _close(_at(e.data[field]), start + timedelta(seconds=e.offset))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(SCENARIOS), seed=seeds, start=starts)
def test_scenarios_are_causal_consistent_and_valid(name: str, seed: int, start: datetime) -> None:
    events = call_scenario(name, random.Random(seed), start=start)
    _check_common(events, start)
    shape = "".join(LETTER[e.event] for e in events)
    assert re.fullmatch(SHAPE[name], shape), shape

    call_ids = {call_id_of(e.event, e.pbx_id, e.data) for e in events}
    assert len(call_ids) == 1
    call_id = call_ids.pop()
    assert events[0].pbx_id == call_id
    for e in events:
        if e.event.endswith(("_call_start", "_call_answer", "_call_end")):
            assert e.pbx_id == call_id
        else:
            assert e.pbx_id != call_id

    # Chain legs: distinct ids and members, each started before it ends, all within the call.
    starts_ = {e.pbx_id: e for e in events if LETTER[e.event] == "m"}
    ends = {e.pbx_id: e for e in events if LETTER[e.event] == "e"}
    assert starts_.keys() == ends.keys()
    assert len({e.data["member"]["user_id"] for e in starts_.values()}) == len(starts_)
    for leg_id, begin in starts_.items():
        end = ends[leg_id]
        assert begin.data["leg_id"] == end.data["leg_id"] == leg_id
        assert begin.data["member"] == end.data["member"]
        assert begin.offset <= end.offset
        assert _at(begin.data["ringing_at"]) <= _at(end.data["ended_at"])
        assert end.data["ring_duration"] + end.data["talk_duration"] <= (
            (_at(end.data["ended_at"]) - _at(begin.data["ringing_at"])).total_seconds() + 1
        )

    final = next(e for e in events if LETTER[e.event] in "Ex")
    disposition = final.data["disposition"]
    assert disposition == ("voicemail" if name == "missed-to-voicemail" else "answered")
    if disposition == "answered":
        answer = next(e for e in events if LETTER[e.event] in "Aa")
        assert final.data["answered_at"] == answer.data["answered_at"]
        assert final.data["recording_url"].startswith("https://")
        talk = (_at(final.data["ended_at"]) - _at(final.data["answered_at"])).total_seconds()
        assert abs(final.data["talk_duration"] - talk) <= 1
        answering = [e for e in ends.values() if e.data["disposition"] == "answered"]
        if name != "outbound":
            assert len(answering) == 1
            assert answering[0].pbx_id == answer.data["leg_id"]
            assert answering[0].data["member"] == answer.data["answered_by"]
    else:
        assert all(e.data["disposition"] in ("missed", "busy") for e in ends.values())
        voicemail = events[-1]
        assert _at(voicemail.data["recorded_at"]) < _at(final.data["ended_at"])


@settings(max_examples=200, deadline=None)
@given(seed=seeds, start=starts)
def test_sms_exchange_alternates_and_validates(seed: int, start: datetime) -> None:
    events = sms_exchange(random.Random(seed), start=start)
    assert len(events) >= 2
    _check_common(events, start)
    customer = events[0].data["from"]
    for i, e in enumerate(events):
        assert e.event == "sms"
        assert e.pbx_id == e.data["message_id"]
        assert call_id_of(e.event, e.pbx_id, e.data) is None
        inbound = i % 2 == 0
        assert e.data["direction"] == ("inbound" if inbound else "outbound")
        assert (e.data["from"] if inbound else e.data["to"]) == customer


@settings(max_examples=200, deadline=None)
@given(event=st.sampled_from(ALL_EVENTS), seed=seeds, now=starts)
def test_sample_data_happens_now(event: str, seed: int, now: datetime) -> None:
    pbx_id, data = sample_data(event, random.Random(seed), now=now)
    validate_publish_request({"event": event, "pbx_id": pbx_id, "data": data})
    field = WHEN_FIELD.get(event)
    if field is not None:
        assert _close(_at(data[field]), now)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenarios_are_reproducible(name: str) -> None:
    start = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    first = call_scenario(name, random.Random(11), start=start)
    assert first == call_scenario(name, random.Random(11), start=start)
    first[0].data["caller"] = "changed"  # events do not share mutable data with each other
    assert first[1].data["caller"] != "changed"


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="Unknown scenario 'dropped'"):
        call_scenario("dropped", random.Random(0), start=datetime(2026, 1, 1, tzinfo=UTC))
