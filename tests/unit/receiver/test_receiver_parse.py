"""callhook.receiver.parse: typed events, unknown events, malformed bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from callhook.events.names import ALL_EVENTS
from callhook.receiver import (
    KNOWN_EVENTS,
    Event,
    MalformedPayload,
    ReceiverError,
    WebhookVerificationError,
    parse,
)

BASE: dict[str, Any] = {
    "id": "evt_01JHB2Q8Z1X9K3M4N5P6Q7R8S9",
    "event": "incoming_call_answer",
    "pbx_id": "pbx-4821",
    "account_id": "acc_local",
    "created_at": "2025-01-15T10:30:00Z",
    "call_id": "call-7731",
    "sequence": 3,
    "data": {"from": "+14155550123", "tags": ["vip"]},
}


def body(**changes: Any) -> bytes:
    obj = {k: v for k, v in {**BASE, **changes}.items() if v is not ...}
    return json.dumps(obj).encode()


def test_parses_call_event() -> None:
    event = parse(body())
    assert event == Event(
        id=BASE["id"],
        event="incoming_call_answer",
        pbx_id="pbx-4821",
        account_id="acc_local",
        created_at=datetime(2025, 1, 15, 10, 30, tzinfo=UTC),
        data={"from": "+14155550123", "tags": ["vip"]},
        call_id="call-7731",
        sequence=3,
    )
    assert event.is_known
    assert event.dedup_key == "incoming_call_answer:pbx-4821"


def test_non_call_event_has_no_call_fields() -> None:
    event = parse(body(event="sms", call_id=..., sequence=...))
    assert (event.call_id, event.sequence) == (None, None)


def test_unknown_event_and_unknown_fields_parse_generically() -> None:
    event = parse(body(event="fax_received", future_field={"x": 1}))
    assert event.event == "fax_received"
    assert not event.is_known


def test_milliseconds_and_offsets() -> None:
    assert parse(body(created_at="2025-01-15T10:30:00.123Z")).created_at.microsecond == 123000
    assert parse(body(created_at="2025-01-15T12:30:00+02:00")).created_at == datetime(
        2025, 1, 15, 10, 30, tzinfo=UTC
    )


def test_known_events_match_the_catalog() -> None:
    assert frozenset(ALL_EVENTS) == KNOWN_EVENTS


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b"[" * 100_000,
        body(id=...),
        body(event=None),
        body(pbx_id=True),
        body(account_id=""),
        body(created_at="yesterday"),
        body(created_at="2025-01-15T10:30:00"),
        body(created_at=1736937000),
        body(sequence=0),
        body(sequence="3"),
        body(sequence=True),
        body(data=[1]),
        body(call_id=5.5),
    ],
)
def test_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse(raw)


def test_malformed_payload_is_not_a_signature_error() -> None:
    assert issubclass(MalformedPayload, ReceiverError)
    assert issubclass(MalformedPayload, ValueError)
    assert not issubclass(MalformedPayload, WebhookVerificationError)


def test_event_is_frozen() -> None:
    event = parse(body())
    with pytest.raises(AttributeError):
        event.event = "x"  # type: ignore[misc]
