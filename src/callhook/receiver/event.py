"""The delivery body as a typed value. Standard library only.

Every delivery Callhook POSTs is one JSON object::

    {"id": "evt_…", "event": "incoming_call_start", "pbx_id": "…", "account_id": "acc_…",
     "created_at": "2025-01-15T10:30:00Z", "call_id": "…", "sequence": 3, "data": {…}}

``call_id`` and ``sequence`` appear only on call-related events; ``sequence`` numbers one call's
events 1, 2, 3… in the order they were published. Unknown event names and unknown top-level
fields are accepted (new events may appear at any time): :func:`parse` never fails on them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

#: Event names known to this version of the SDK (the catalog of specs 001/002). An event not
#: in this list still parses; ``Event.is_known`` tells the two apart.
KNOWN_EVENTS: Final[frozenset[str]] = frozenset(
    {
        "incoming_call_start",
        "incoming_call_start_chain_member_call",
        "incoming_call_end_chain_member_call",
        "incoming_call_answer",
        "incoming_call_end",
        "outgoing_call_start",
        "outgoing_call_answer",
        "outgoing_call_end",
        "voicemail",
        "tags",
        "speech",
        "summary",
        "sms",
        "rating",
        "test",
    }
)


class ReceiverError(Exception):
    """Base of the receiver's non-signature errors."""


class MalformedPayload(ReceiverError, ValueError):
    """The body verified but is not a delivery object (bad JSON, missing or mistyped field).

    Deliberately *not* a ``WebhookVerificationError``: the sender was authenticated, so an
    adapter answers 400, not 401.
    """


@dataclass(frozen=True, slots=True)
class Event:
    """One delivered event. ``data`` is the decoded JSON object (plain ``dict``/``list``
    values, so it can be re-serialized); treat it as read-only. Its shape depends on ``event``.
    """

    id: str
    event: str
    pbx_id: str
    account_id: str
    created_at: datetime
    data: Mapping[str, Any]
    call_id: str | None = None
    sequence: int | None = None

    @property
    def is_known(self) -> bool:
        """Whether this SDK version knows the event name (unknown ones still parse)."""
        return self.event in KNOWN_EVENTS

    @property
    def dedup_key(self) -> str:
        """``"<event>:<pbx_id>"``, the key spec 000 recommends for deduplication."""
        return f"{self.event}:{self.pbx_id}"


def _string(obj: Mapping[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = obj.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedPayload(f"field {name!r} must be a string")
    text = str(value)
    if not text:
        raise MalformedPayload(f"field {name!r} must not be empty")
    return text


def _required(obj: Mapping[str, Any], name: str) -> str:
    value = _string(obj, name)
    assert value is not None
    return value


def _created_at(obj: Mapping[str, Any]) -> datetime:
    raw = obj.get("created_at")
    if not isinstance(raw, str):
        raise MalformedPayload("field 'created_at' must be an RFC 3339 string")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise MalformedPayload("field 'created_at' is not an RFC 3339 time") from exc
    if when.tzinfo is None:
        raise MalformedPayload("field 'created_at' has no UTC offset")
    return when


def _sequence(obj: Mapping[str, Any]) -> int | None:
    value = obj.get("sequence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MalformedPayload("field 'sequence' must be a positive integer")
    return value


def from_mapping(obj: Mapping[str, Any]) -> Event:
    """An :class:`Event` from an already-decoded delivery object."""
    data = obj.get("data", {})
    if not isinstance(data, Mapping):
        raise MalformedPayload("field 'data' must be an object")
    return Event(
        id=_required(obj, "id"),
        event=_required(obj, "event"),
        pbx_id=_required(obj, "pbx_id"),
        account_id=_required(obj, "account_id"),
        created_at=_created_at(obj),
        data=dict(data),
        call_id=_string(obj, "call_id", optional=True),
        sequence=_sequence(obj),
    )


def parse(raw_body: bytes | str) -> Event:
    """Decode a delivery body (verify it first!). Raises only :class:`MalformedPayload`.

    Unknown event names give the same generic :class:`Event`; check ``event.is_known`` or
    dispatch on ``event.event`` with a default branch.
    """
    try:
        obj = json.loads(raw_body)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload("the body is not JSON") from exc
    if not isinstance(obj, dict):
        raise MalformedPayload("the body is not a JSON object")
    return from_mapping(obj)
