"""validate_data / call_id_of / validate_publish_request: the payload contract of every event."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from callhook.errors import PayloadInvalid, UnknownEvent
from callhook.events import (
    ALL_EVENTS,
    CALL_EVENTS,
    MODELS,
    SUBSCRIBABLE_EVENTS,
    call_id_of,
    sample_data,
    sample_publish_request,
    validate_data,
    validate_publish_request,
)
from callhook.events.models import E164_PATTERN

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def _sample(event: str, seed: int = 0) -> tuple[str, dict[str, Any]]:
    return sample_data(event, random.Random(seed), now=NOW)


def _fields(predicate: Any) -> list[tuple[str, str]]:
    """``(event, field)`` for every top-level field of every model that ``predicate`` selects."""
    out = []
    for event, model in MODELS.items():
        schema = model.model_json_schema()
        for name, prop in schema["properties"].items():
            if predicate(name, prop, name in schema.get("required", ())):
                out.append((event, name))
    return out


REQUIRED = _fields(lambda _n, _p, required: required)
E164_FIELDS = _fields(lambda _n, prop, _r: prop.get("pattern") == E164_PATTERN)
# Every field present in the event's sample (optional ones included when the sample has them).
SAMPLED = [(e, f) for e in ALL_EVENTS for f in _sample(e)[1]]


def _wrong_type(value: object) -> object:
    if isinstance(value, str):
        return 12345
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return str(value)
    return "not-an-object-or-list"


def test_catalog_covers_every_event_in_order() -> None:
    assert tuple(MODELS) == ALL_EVENTS
    assert len(SUBSCRIBABLE_EVENTS) == 14
    assert len(ALL_EVENTS) == 15
    assert set(ALL_EVENTS) - CALL_EVENTS == {"sms", "test"}


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_sample_validates_and_round_trips(event: str) -> None:
    _, data = _sample(event)
    assert validate_data(event, data) == data


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_sample_publish_request_is_valid(event: str) -> None:
    request = sample_publish_request(event, random.Random(5), now=NOW, account_id="acc_1")
    assert list(request) == ["event", "pbx_id", "account_id", "data"]
    assert request["event"] == event
    assert validate_publish_request(request) == request
    assert "account_id" not in sample_publish_request(event, random.Random(5), now=NOW)


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_samples_are_deterministic_per_seed(event: str) -> None:
    assert _sample(event, 3) == _sample(event, 3)
    assert _sample(event, 3) != _sample(event, 4)


@pytest.mark.parametrize(("event", "field"), E164_FIELDS)
@pytest.mark.parametrize(
    "bad", ["+0123456789", "14155550123", "+141555", "+1415555012345678", "+1 415 555 0123"]
)
def test_bad_e164_names_the_field(event: str, field: str, bad: str) -> None:
    _, data = _sample(event)
    data[field] = bad
    with pytest.raises(PayloadInvalid) as info:
        validate_data(event, data)
    assert info.value.field == f"data.{field}"
    assert info.value.message == f"data.{field}: value is not a valid E.164 number"


def test_e164_fields_cover_every_call_party() -> None:
    assert ("incoming_call_start", "caller") in E164_FIELDS
    assert ("sms", "from") in E164_FIELDS
    assert ("voicemail", "callee") in E164_FIELDS


@pytest.mark.parametrize(("event", "field"), REQUIRED)
def test_missing_required_field_is_named(event: str, field: str) -> None:
    _, data = _sample(event)
    del data[field]
    with pytest.raises(PayloadInvalid) as info:
        validate_data(event, data)
    assert info.value.field == f"data.{field}"
    assert info.value.message == f"data.{field}: field required"


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_extra_field_is_rejected(event: str) -> None:
    _, data = _sample(event)
    data["internal_note"] = "x"
    with pytest.raises(PayloadInvalid) as info:
        validate_data(event, data)
    assert info.value.field == "data.internal_note"
    assert info.value.message == "data.internal_note: unknown field"


@pytest.mark.parametrize(("event", "field"), SAMPLED)
def test_wrong_type_names_the_field(event: str, field: str) -> None:
    _, data = _sample(event)
    data[field] = _wrong_type(data[field])
    with pytest.raises(PayloadInvalid) as info:
        validate_data(event, data)
    assert info.value.field == f"data.{field}"
    assert info.value.message.startswith(f"data.{field}: ")


@pytest.mark.parametrize("data", [None, [], "text", 3])
def test_data_must_be_an_object(data: object) -> None:
    with pytest.raises(PayloadInvalid) as info:
        validate_data("incoming_call_start", data)
    assert info.value.field == "data"
    assert info.value.message == "data: must be a JSON object"


@pytest.mark.parametrize("name", ["invalid_event", "", "Incoming_Call_Start", "call.started"])
def test_unknown_event_raises_with_the_exact_message(name: str) -> None:
    for call in (
        lambda: validate_data(name, {}),
        lambda: call_id_of(name, "p", {}),
        lambda: sample_data(name, random.Random(0), now=NOW),
    ):
        with pytest.raises(UnknownEvent) as info:
            call()
        assert info.value.name == name
        assert str(info.value) == (
            f"Unknown event '{name}'. Use GET /api/v2/webhooks/available "
            "for the list of valid events."
        )


def test_nested_and_list_errors_name_the_dotted_path() -> None:
    _, data = _sample("incoming_call_start_chain_member_call")
    data["member"]["extension"] = "ext-1"
    with pytest.raises(PayloadInvalid) as info:
        validate_data("incoming_call_start_chain_member_call", data)
    assert info.value.field == "data.member.extension"

    _, data = _sample("speech")
    data["segments"][1]["end"] = data["segments"][1]["start"] - 1
    with pytest.raises(PayloadInvalid) as info:
        validate_data("speech", data)
    assert info.value.field == "data.segments.1.end"
    assert info.value.message == "data.segments.1.end: value is earlier than start"


def test_first_bad_field_wins() -> None:
    _, data = _sample("incoming_call_end")
    data["callee"] = "nope"
    data["talk_duration"] = -1
    with pytest.raises(PayloadInvalid) as info:
        validate_data("incoming_call_end", data)
    assert info.value.field == "data.callee"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-15T11:30:00+01:00", "2026-01-15T10:30:00.000Z"),
        ("2026-01-15T10:30:00.123456Z", "2026-01-15T10:30:00.123Z"),
        ("2026-01-15t10:30:00z", "2026-01-15T10:30:00.000Z"),
    ],
)
def test_timestamps_are_normalised_to_utc_z(value: str, expected: str) -> None:
    out = validate_data("test", {"message": "hi", "timestamp": value})
    assert out["timestamp"] == expected


@pytest.mark.parametrize(
    "value",
    ["2026-01-15T10:30:00", "2026-01-15", "1768473000", 1768473000, "yesterday", None],
)
def test_timestamps_need_rfc3339_with_zone(value: object) -> None:
    with pytest.raises(PayloadInvalid) as info:
        validate_data("test", {"message": "hi", "timestamp": value})
    assert info.value.field == "data.timestamp"


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        ("incoming_call_end", "ring_duration", -1),
        ("incoming_call_end", "ring_duration", 1.5),
        ("incoming_call_end", "ring_duration", True),
        ("incoming_call_end", "disposition", "hung-up"),
        ("incoming_call_end", "recording_url", "http://files.example.com/r.mp3"),
        ("incoming_call_start", "direction", "outbound"),
        ("outgoing_call_start", "direction", "inbound"),
        ("incoming_call_start", "call_id", "has space"),
        ("rating", "mos", 5.1),
        ("rating", "mos", 0.9),
        ("rating", "packet_loss_pct", 101),
        ("rating", "jitter_ms", -0.1),
        ("speech", "language", "english"),
        ("sms", "text", ""),
        ("tags", "tags", ["ok", ""]),
    ],
)
def test_out_of_range_values_are_rejected(event: str, field: str, value: object) -> None:
    _, data = _sample(event)
    data[field] = value
    with pytest.raises(PayloadInvalid) as info:
        validate_data(event, data)
    assert info.value.field is not None
    assert info.value.field.startswith(f"data.{field}")


def test_times_cannot_precede_the_call_start() -> None:
    _, data = _sample("incoming_call_end")
    data["ended_at"] = "2000-01-01T00:00:00Z"
    with pytest.raises(PayloadInvalid) as info:
        validate_data("incoming_call_end", data)
    assert info.value.message == "data.ended_at: value is earlier than started_at"


def test_answered_disposition_needs_answered_at() -> None:
    _, data = _sample("outgoing_call_end")
    del data["answered_at"]
    with pytest.raises(PayloadInvalid) as info:
        validate_data("outgoing_call_end", data)
    assert info.value.message == "data.disposition: an answered call needs answered_at"
    data["disposition"] = "busy"
    assert validate_data("outgoing_call_end", data)["disposition"] == "busy"


def test_optional_null_fields_are_dropped() -> None:
    _, data = _sample("incoming_call_start")
    data["caller_name"] = None
    data["line"] = None
    out = validate_data("incoming_call_start", data)
    assert "caller_name" not in out
    assert "line" not in out


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_call_id_of(event: str) -> None:
    pbx_id, data = _sample(event)
    if event in ("sms", "test"):
        assert call_id_of(event, pbx_id, data) is None
    else:
        assert call_id_of(event, pbx_id, data) == data["call_id"]


def test_call_id_of_needs_a_call_id() -> None:
    with pytest.raises(PayloadInvalid) as info:
        call_id_of("rating", "rat_1", {})
    assert info.value.field == "data.call_id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(pbx_id="other"), "pbx_id"),
        (lambda r: r.update(pbx_id=""), "pbx_id"),
        (lambda r: r.update(account_id=7), "account_id"),
        (lambda r: r.update(extra=1), "extra"),
        (lambda r: r.pop("data"), "data"),
        (lambda r: r.update(event=3), "event"),
        (lambda r: r["data"].update(call_id="c_other"), "pbx_id"),
    ],
)
def test_publish_request_checks(change: Any, field: str) -> None:
    request = sample_publish_request("incoming_call_answer", random.Random(1), now=NOW)
    change(request)
    with pytest.raises(PayloadInvalid) as info:
        validate_publish_request(request)
    assert info.value.field == field


def test_publish_request_test_event_pbx_id_is_free() -> None:
    request = sample_publish_request("test", random.Random(1), now=NOW)
    request["pbx_id"] = "anything-1"
    assert validate_publish_request(request)["pbx_id"] == "anything-1"
    with pytest.raises(UnknownEvent):
        validate_publish_request({**request, "event": "nope"})
