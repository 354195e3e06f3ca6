"""Realistic, valid sample events: single samples, whole call scenarios, SMS exchanges.

All randomness comes from the ``random.Random`` passed in and all times from ``start``/``now``,
so the same seed and time give the same events. Phone numbers are drawn from ranges reserved
for fiction (US 555-01xx, UK Ofcom drama ranges, AU 0491 570); URLs use ``example.com``.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from callhook.core.clock import rfc3339
from callhook.core.ids import new_id
from callhook.errors import InvalidRequest
from callhook.events.content import DIDS, DIRECTORY, SMS_THREADS, TOPICS, Topic
from callhook.events.validate import model_for

SCENARIOS: Final = ("answered", "missed-to-voicemail", "chain-hunt", "outbound")

TEST_MESSAGE: Final = "Test event from Callhook: your endpoint is reachable."


@dataclass(frozen=True)
class ScheduledEvent:
    """One event of a scenario: publish ``{"event", "pbx_id", "data"}`` at start + ``offset``."""

    offset: float  # seconds after call start
    event: str
    pbx_id: str
    data: dict[str, Any]


def _phone(rng: random.Random) -> str:
    """A customer's number from a range reserved for fiction."""
    kind = rng.randrange(4)
    if kind == 0:
        return f"+1{rng.choice((212, 312, 415, 503, 646, 718))}5550{rng.randrange(100, 200)}"
    if kind == 1:
        return f"+44207946{rng.randrange(1000):04d}"
    if kind == 2:
        return f"+447700900{rng.randrange(1000):03d}"
    return f"+61491570{rng.randrange(100, 1000)}"


class _Call:
    """Builds one call's events; offsets are seconds after ``start``."""

    def __init__(self, rng: random.Random, start: datetime, direction: str) -> None:
        self.rng = rng
        self.start = start
        self.direction = direction
        self.call_id = new_id("call", start, rng)
        self.did, self.line = rng.choice(DIDS)
        self.customer = _phone(rng)
        self.topic: Topic = rng.choice(TOPICS)
        self.events: list[ScheduledEvent] = []

    def when(self, offset: float) -> datetime:
        # Whole milliseconds, like the offsets: data times then equal start + offset exactly.
        return self.start + timedelta(milliseconds=round(offset * 1000))

    def at(self, offset: float) -> str:
        return rfc3339(self.when(offset))

    def new_id(self, prefix: str, offset: float) -> str:
        return new_id(prefix, self.when(offset), self.rng)

    def emit(self, offset: float, event: str, pbx_id: str, data: dict[str, Any]) -> None:
        # Deep copy: events share member dicts and lists while being built; callers may mutate.
        self.events.append(ScheduledEvent(round(offset, 3), event, pbx_id, copy.deepcopy(data)))

    def base(self) -> dict[str, Any]:
        inbound = self.direction == "inbound"
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "caller": self.customer if inbound else self.did,
            "callee": self.did if inbound else self.customer,
            "did": self.did,
            "line": self.line,
            "started_at": self.at(0),
        }

    def recording_url(self) -> str:
        return f"https://files.example.com/recordings/{self.call_id}.mp3"

    def done(self) -> list[ScheduledEvent]:
        # Stable sort: events built in causal order keep it when offsets tie.
        return sorted(self.events, key=lambda e: e.offset)


def _member_start(call: _Call, leg_id: str, member: dict[str, str], pos: int, t: float) -> None:
    call.emit(
        t,
        "incoming_call_start_chain_member_call",
        leg_id,
        {
            **call.base(),
            "leg_id": leg_id,
            "member": member,
            "position": pos,
            "ringing_at": call.at(t),
        },
    )


def _member_end(
    call: _Call,
    leg_id: str,
    member: dict[str, str],
    pos: int,
    times: tuple[float, float, float],
    disposition: str,
) -> None:
    ringing, answered, ended = times
    call.emit(
        ended,
        "incoming_call_end_chain_member_call",
        leg_id,
        {
            **call.base(),
            "leg_id": leg_id,
            "member": member,
            "position": pos,
            "ringing_at": call.at(ringing),
            "ended_at": call.at(ended),
            "ring_duration": round(answered - ringing),
            "talk_duration": round(ended - answered),
            "disposition": disposition,
        },
    )


def _segments(call: _Call, agent: dict[str, str]) -> list[dict[str, Any]]:
    segments: list[dict[str, Any]] = []
    t = call.rng.uniform(0.5, 2.0)
    for speaker, line in call.topic.dialogue:
        text = line.format(agent=agent["user_name"].split()[0])
        length = max(1.0, len(text.split()) * call.rng.uniform(0.3, 0.45))
        segments.append(
            {"speaker": speaker, "start": round(t, 2), "end": round(t + length, 2), "text": text}
        )
        t += length + call.rng.uniform(0.2, 1.5)
    return segments


def _follow_ups(
    call: _Call, t_end: float, agent: dict[str, str], segments: list[dict[str, Any]], tags: bool
) -> None:
    """Transcript, summary and quality rating after a conversation; tag updates if ``tags``."""
    rng = call.rng
    t = t_end + rng.uniform(8, 45)
    transcript_id = call.new_id("tr", t)
    data = {"call_id": call.call_id, "transcript_id": transcript_id, "language": "en-US"}
    call.emit(
        t, "speech", transcript_id, {**data, "segments": segments, "completed_at": call.at(t)}
    )

    t += rng.uniform(2, 12)
    summary_id = call.new_id("sum", t)
    summary: dict[str, Any] = {
        "call_id": call.call_id,
        "summary_id": summary_id,
        "text": call.topic.summary,
        "sentiment": call.topic.sentiment,
        "generated_at": call.at(t),
    }
    if call.topic.action_items:
        summary["action_items"] = list(call.topic.action_items)
    call.emit(t, "summary", summary_id, summary)

    t += rng.uniform(0.5, 5)
    mos = round(rng.uniform(3.4, 4.5), 2)
    loss = round(rng.uniform(0, 2.5), 2)
    rating_id = call.new_id("rat", t)
    call.emit(
        t,
        "rating",
        rating_id,
        {
            "call_id": call.call_id,
            "rating_id": rating_id,
            "mos": mos,
            "jitter_ms": round(rng.uniform(1, 30), 1),
            "packet_loss_pct": loss,
            "score": max(0, min(100, round((mos - 1) / 4 * 100 - loss * 4))),
            "rated_at": call.at(t),
        },
    )
    if not tags:
        return
    # First the agent files the call (topic tags + "open"); sometimes later closes it.
    updates: list[tuple[list[str], list[str]]] = [([*call.topic.tags, "open"], [])]
    if rng.random() < 0.4:
        updates.append((["resolved"], ["open"]))
    current: list[str] = []
    for added, removed in updates:
        t += rng.uniform(5, 90)
        current = [tag for tag in current if tag not in removed] + added
        update_id = call.new_id("tag", t)
        call.emit(
            t,
            "tags",
            update_id,
            {
                "call_id": call.call_id,
                "update_id": update_id,
                "tags": current,
                "added": added,
                "removed": removed,
                "updated_by": agent,
                "updated_at": call.at(t),
            },
        )


def _answered_inbound(rng: random.Random, start: datetime, unanswered: int) -> list[ScheduledEvent]:
    """Members ring in turn; ``unanswered`` of them miss (or are busy) before one answers."""
    call = _Call(rng, start, "inbound")
    start_data: dict[str, Any] = call.base()
    if rng.random() < 0.5:
        start_data["caller_name"] = rng.choice(("Jordan Smith", "Priya Patel", "Liam O'Brien"))
    call.emit(0, "incoming_call_start", call.call_id, start_data)

    members = [dict(m) for m in rng.sample(DIRECTORY, unanswered + 1)]
    t = rng.uniform(0.2, 1.5)
    for pos, member in enumerate(members[:-1], start=1):
        leg_id = call.new_id("leg", t)
        _member_start(call, leg_id, member, pos, t)
        busy = rng.random() < 0.2
        ring = rng.uniform(0, 0.8) if busy else rng.uniform(10, 20)
        end = t + ring
        _member_end(call, leg_id, member, pos, (t, end, end), "busy" if busy else "missed")
        t = end + rng.uniform(0.2, 1.0)

    agent = members[-1]
    pos = len(members)
    leg_id = call.new_id("leg", t)
    _member_start(call, leg_id, agent, pos, t)
    t_answer = t + rng.uniform(3, 12)
    answer = {
        **call.base(),
        "answered_at": call.at(t_answer),
        "ring_duration": round(t_answer),
        "leg_id": leg_id,
        "answered_by": agent,
    }
    call.emit(t_answer, "incoming_call_answer", call.call_id, answer)

    segments = _segments(call, agent)
    t_hangup = t_answer + segments[-1]["end"] + rng.uniform(3, 60)
    _member_end(call, leg_id, agent, pos, (t, t_answer, t_hangup), "answered")
    t_end = t_hangup + rng.uniform(0.05, 0.5)
    end_data = {
        **call.base(),
        "answered_at": call.at(t_answer),
        "ended_at": call.at(t_end),
        "ring_duration": round(t_answer),
        "talk_duration": round(t_end - t_answer),
        "disposition": "answered",
        "answered_by": agent,
        "recording_url": call.recording_url(),
    }
    call.emit(t_end, "incoming_call_end", call.call_id, end_data)
    _follow_ups(call, t_end, agent, segments, tags=True)
    return call.done()


def _missed_to_voicemail(rng: random.Random, start: datetime) -> list[ScheduledEvent]:
    """A ring group rings together, nobody answers, the caller leaves a voicemail."""
    call = _Call(rng, start, "inbound")
    call.emit(0, "incoming_call_start", call.call_id, call.base())
    members = [dict(m) for m in rng.sample(DIRECTORY, rng.randint(1, 3))]
    timeout = rng.uniform(15, 30)
    for member in members:  # one step of the chain: all ring at once
        t = rng.uniform(0.2, 1.0)
        leg_id = call.new_id("leg", t)
        _member_start(call, leg_id, member, 1, t)
        busy = rng.random() < 0.2
        end = t + rng.uniform(0, 0.8) if busy else timeout + rng.uniform(0, 0.3)
        _member_end(call, leg_id, member, 1, (t, end, end), "busy" if busy else "missed")

    t_greeting = timeout + rng.uniform(0.5, 2)
    t_record = t_greeting + rng.uniform(4, 8)
    length = rng.uniform(8, 60)
    t_end = t_record + length + rng.uniform(0.1, 1)
    end_data = {
        **call.base(),
        "ended_at": call.at(t_end),
        "ring_duration": round(t_greeting),
        "talk_duration": 0,
        "disposition": "voicemail",
    }
    call.emit(t_end, "incoming_call_end", call.call_id, end_data)

    t = t_end + rng.uniform(3, 20)
    voicemail_id = call.new_id("vm", t)
    call.emit(
        t,
        "voicemail",
        voicemail_id,
        {
            "call_id": call.call_id,
            "voicemail_id": voicemail_id,
            "caller": call.customer,
            "callee": call.did,
            "mailbox": members[0]["extension"],
            "audio_url": f"https://files.example.com/voicemail/{voicemail_id}.mp3",
            "duration": round(length),
            "transcription": call.topic.voicemail,
            "recorded_at": call.at(t_record),
        },
    )
    return call.done()


def _outbound(rng: random.Random, start: datetime) -> list[ScheduledEvent]:
    """A user dials out, the customer answers, they talk, then transcript/summary/rating."""
    call = _Call(rng, start, "outbound")
    user = dict(rng.choice(DIRECTORY))
    call.emit(0, "outgoing_call_start", call.call_id, {**call.base(), "user": user})
    t_answer = rng.uniform(4, 25)
    answer = {
        **call.base(),
        "user": user,
        "answered_at": call.at(t_answer),
        "ring_duration": round(t_answer),
    }
    call.emit(t_answer, "outgoing_call_answer", call.call_id, answer)
    segments = _segments(call, user)
    t_end = t_answer + segments[-1]["end"] + rng.uniform(3, 60)
    end_data = {
        **call.base(),
        "user": user,
        "answered_at": call.at(t_answer),
        "ended_at": call.at(t_end),
        "ring_duration": round(t_answer),
        "talk_duration": round(t_end - t_answer),
        "disposition": "answered",
        "recording_url": call.recording_url(),
    }
    call.emit(t_end, "outgoing_call_end", call.call_id, end_data)
    _follow_ups(call, t_end, user, segments, tags=False)
    return call.done()


def call_scenario(name: str, rng: random.Random, *, start: datetime) -> list[ScheduledEvent]:
    """One whole call's events, in causal order, offsets non-decreasing from 0 at ``start``.

    - ``answered``: incoming_call_start, the answering member's leg start, incoming_call_answer,
      that leg's end, incoming_call_end, then speech, summary, rating and 1-2 tag updates.
    - ``missed-to-voicemail``: start, 1-3 members ring together and end missed/busy,
      incoming_call_end (``voicemail``), voicemail.
    - ``chain-hunt``: like ``answered``, but 1-3 members ring in turn and miss first.
    - ``outbound``: outgoing_call_start/answer/end, then speech, summary, rating.

    Every event has the same ``data.call_id``; call start/answer/end use it as ``pbx_id``,
    member legs use their ``leg_id`` and records their own id, all distinct. Raises
    :class:`InvalidRequest` for an unknown scenario name.
    """
    if name == "answered":
        return _answered_inbound(rng, start, unanswered=0)
    if name == "chain-hunt":
        return _answered_inbound(rng, start, unanswered=rng.randint(1, 3))
    if name == "missed-to-voicemail":
        return _missed_to_voicemail(rng, start)
    if name == "outbound":
        return _outbound(rng, start)
    raise InvalidRequest(f"Unknown scenario '{name}'. Choose one of: {', '.join(SCENARIOS)}.")


def sms_exchange(rng: random.Random, *, start: datetime) -> list[ScheduledEvent]:
    """A customer texts one of the account's numbers and they reply: 2-5 ``sms`` events,
    alternating inbound/outbound, offsets non-decreasing from 0. ``pbx_id`` is the message id.
    """
    did, _ = rng.choice(DIDS)
    customer = _phone(rng)
    thread = rng.choice(SMS_THREADS)
    count = rng.randint(2, len(thread))
    events: list[ScheduledEvent] = []
    t = 0.0
    for i, text in enumerate(thread[:count]):
        if i:
            t = round(t + rng.uniform(15, 240), 3)
        inbound = i % 2 == 0
        message_id = new_id("sms", start + timedelta(seconds=t), rng)
        data = {
            "message_id": message_id,
            "direction": "inbound" if inbound else "outbound",
            "from": customer if inbound else did,
            "to": did if inbound else customer,
            "text": text,
            "sent_at": rfc3339(start + timedelta(seconds=t)),
        }
        events.append(ScheduledEvent(t, "sms", message_id, data))
    return events


def _build(source: str, rng: random.Random, start: datetime) -> list[ScheduledEvent]:
    if source == "sms":
        return sms_exchange(rng, start=start)
    return call_scenario(source, rng, start=start)


_SOURCE_OF: Final = {
    "incoming_call_start_chain_member_call": "chain-hunt",
    "incoming_call_end_chain_member_call": "chain-hunt",
    "voicemail": "missed-to-voicemail",
    "outgoing_call_start": "outbound",
    "outgoing_call_answer": "outbound",
    "outgoing_call_end": "outbound",
    "sms": "sms",
}


def sample_data(event: str, rng: random.Random, *, now: datetime) -> tuple[str, dict[str, Any]]:
    """A realistic ``(pbx_id, data)`` for ``event`` that happens at ``now``; always valid.

    Call events are cut from a whole scenario (so ids and times are consistent), shifted so
    that the chosen event lands at ``now``. Raises :class:`UnknownEvent` for unknown names.
    """
    model_for(event)
    if event == "test":
        return new_id("test", now, rng), {"message": TEST_MESSAGE, "timestamp": rfc3339(now)}
    source = _SOURCE_OF.get(event, "answered")
    # Two passes from the same state: the first finds the event's offset, the second builds
    # the same events with the start moved back by it.
    state = rng.getstate()
    offset = next(e.offset for e in _build(source, rng, now) if e.event == event)
    rng.setstate(state)
    chosen = next(
        e for e in _build(source, rng, now - timedelta(seconds=offset)) if e.event == event
    )
    return chosen.pbx_id, chosen.data


def sample_publish_request(
    event: str, rng: random.Random, *, now: datetime, account_id: str | None = None
) -> dict[str, Any]:
    """``{"event", "pbx_id"[, "account_id"], "data"}``: a valid publish request for ``event``."""
    pbx_id, data = sample_data(event, rng, now=now)
    request: dict[str, Any] = {"event": event, "pbx_id": pbx_id}
    if account_id is not None:
        request["account_id"] = account_id
    request["data"] = data
    return request
