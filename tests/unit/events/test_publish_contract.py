"""The one publish contract (events.validate_publish_item, behind publish.parse_event): every
string field that reaches storage, every timestamp, the catalog's cross-field rule.

Class 3 and 4 of issue 11: tables of hostile values over every field of every event, and
properties over arbitrary text. Each refusal is a PayloadInvalid naming the field.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.errors import PayloadInvalid
from callhook.events import ALL_EVENTS, sample_publish_request, validate_data
from callhook.events import validate as validate_module
from callhook.events.fast import FAST, Unsure
from callhook.events.models import PBX_ID_FIELD, PBX_ID_PATTERN
from callhook.events.validate import validate_publish_item
from callhook.publish import parse_event

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
ACCOUNT = "acc_01KF0K8Y20PDDGMEPHX7DTC6DB"
ID_RULE = (
    "value is not a valid id (1-128 letters, digits, '.', '_', ':' or '-',"
    " the first a letter or digit)"
)
RANGE = "must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"


def _request(event: str, seed: int = 0) -> dict[str, Any]:
    return sample_publish_request(event, random.Random(seed), now=NOW, account_id=ACCOUNT)


def _refused(item: object, where: str = "") -> PayloadInvalid:
    with pytest.raises(PayloadInvalid) as info:
        validate_publish_item(item, where=where)
    # parse_event is the same contract: same error, same field.
    with pytest.raises(PayloadInvalid) as again:
        parse_event(item, where=where)
    assert (again.value.message, again.value.field) == (info.value.message, info.value.field)
    assert info.value.field is not None
    assert info.value.message.startswith(f"{info.value.field}: ")
    return info.value


# --- Ids: pbx_id and account_id ------------------------------------------------------------------
BAD_IDS: list[tuple[object, str]] = [
    (12345, "must be a string"),  # an integer is not stringified
    (0, "must be a string"),
    (1.5, "must be a string"),
    (True, "must be a string"),
    ([], "must be a string"),
    ({}, "must be a string"),
    ("", ID_RULE),
    ("a\x00b", ID_RULE),  # PostgreSQL cannot store it: a 500 on every retry before
    ("\x00", ID_RULE),
    ("call\x01", ID_RULE),
    ("call\x7f", ID_RULE),
    ("call\u0085", ID_RULE),
    ("call\n", ID_RULE),
    ("call 1", ID_RULE),
    ("call\t1", ID_RULE),
    ("x" * 129, ID_RULE),
    ("-call", ID_RULE),
    (".call", ID_RULE),
    ("call/1", ID_RULE),
    ("call#1", ID_RULE),
    ("ünïcode", ID_RULE),
    ("call\u202e1", ID_RULE),
    ("call\ud800", ID_RULE),
    ("１２３", ID_RULE),
]


@pytest.mark.parametrize("event", ALL_EVENTS)
@pytest.mark.parametrize(("value", "message"), BAD_IDS, ids=[repr(v)[:20] for v, _ in BAD_IDS])
def test_bad_pbx_ids_are_refused_naming_the_field(event: str, value: object, message: str) -> None:
    item = _request(event)
    item["pbx_id"] = value
    error = _refused(item)
    assert error.field == "pbx_id"
    assert error.message == f"pbx_id: {message}"


@pytest.mark.parametrize(("value", "message"), BAD_IDS, ids=[repr(v)[:20] for v, _ in BAD_IDS])
def test_bad_account_ids_are_refused_naming_the_field(value: object, message: str) -> None:
    item = _request("sms")
    item["account_id"] = value
    error = _refused(item, where="events[7].")
    assert error.field == "events[7].account_id"
    assert error.message == f"events[7].account_id: {message}"


def test_missing_ids() -> None:
    item = _request("sms")
    del item["pbx_id"]
    assert _refused(item).message == "pbx_id: field required"
    item = _request("sms")
    item["pbx_id"] = None
    assert _refused(item).message == "pbx_id: field required"
    item = _request("sms")
    item["account_id"] = None  # optional: null is absent
    assert validate_publish_item(item)[2] is None


@given(st.text(max_size=140))
def test_any_text_is_an_id_exactly_when_it_matches_the_documented_pattern(text: str) -> None:
    # ``test`` leaves pbx_id free of the cross-field rule, so only the pattern decides.
    item = _request("test")
    item["pbx_id"] = text
    if re.fullmatch(PBX_ID_PATTERN, text, re.ASCII):
        assert validate_publish_item(item)[1] == text
    else:
        assert _refused(item).field == "pbx_id"


# --- idempotency_key ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (7, "must be a string"),
        (False, "must be a string"),
        ("", "must be 1 to 200 characters"),
        ("k" * 201, "must be 1 to 200 characters"),
        ("k\x00", "must not contain control characters"),
        ("k\x1b[31m", "must not contain control characters"),
        ("k\n", "must not contain control characters"),
        ("k\u009b", "must not contain control characters"),
        ("k\udfff", "must not contain control characters"),
    ],
)
def test_bad_idempotency_keys(value: object, message: str) -> None:
    item = {**_request("sms"), "idempotency_key": value}
    assert _refused(item).message == f"idempotency_key: {message}"


@pytest.mark.parametrize("value", ["k", "k" * 200, "pbx-42 start", "ключ/1", "😀"])
def test_good_idempotency_keys(value: str) -> None:
    item = {**_request("sms"), "idempotency_key": value}
    assert validate_publish_item(item)[4] == value


# --- The catalog's cross-field rule ---------------------------------------------------------------
@pytest.mark.parametrize("event", sorted(PBX_ID_FIELD))
def test_pbx_id_must_be_the_data_field_the_catalog_names(event: str) -> None:
    field = PBX_ID_FIELD[event]
    item = _request(event)
    assert item["pbx_id"] == item["data"][field]
    expected = f"pbx_id: must equal data.{field} for {event}"
    assert _refused({**item, "pbx_id": "someone-else"}).message == expected
    changed = copy.deepcopy(item)
    changed["data"][field] = "someone-else"
    assert _refused(changed).message == expected


def test_the_test_events_pbx_id_is_free() -> None:
    item = {**_request("test"), "pbx_id": "anything-1"}
    assert validate_publish_item(item)[1] == "anything-1"


# --- Every string field of every event ------------------------------------------------------------
def _string_leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _string_leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _string_leaves(v, (*path, i))


def _field_name(path: tuple[Any, ...]) -> str:
    return "data" + "".join(f".{p}" for p in path)


def _with(item: dict[str, Any], path: tuple[Any, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(item)
    parent = changed["data"]
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return changed


def _every_string_field() -> list[tuple[str, int, tuple[Any, ...]]]:
    """``(event, seed, path)`` for every string field of every event's data, once each (list
    items once per list); several seeds, so optional fields appear too."""
    found: dict[tuple[str, tuple[Any, ...]], tuple[str, int, tuple[Any, ...]]] = {}
    for event in ALL_EVENTS:
        for seed in range(6):
            for path in _string_leaves(_request(event, seed)["data"]):
                generic = tuple(0 if isinstance(p, int) else p for p in path)
                found.setdefault((event, generic), (event, seed, path))
    return sorted(found.values(), key=repr)


STRING_FIELDS = _every_string_field()
# Fields of multi-line text: they may hold tab and line breaks, nothing else below U+0020.
MULTI_LINE = {"transcription", "text", "action_items", "message"}


def _is_multi_line(path: tuple[Any, ...]) -> bool:
    return any(part in MULTI_LINE for part in path if isinstance(part, str))


@pytest.mark.parametrize(
    ("event", "seed", "path"), STRING_FIELDS, ids=[f"{e}:{p}" for e, _, p in STRING_FIELDS]
)
@pytest.mark.parametrize(
    "bad", ["\x00", "\x01", "\x1b", "\x7f", "\u0085", "\u009f", "\ud800", 12345, 12.5, True]
)
def test_no_string_field_takes_control_characters_or_numbers(
    event: str, seed: int, path: tuple[Any, ...], bad: object
) -> None:
    item = _request(event, seed)
    original = item["data"]
    for part in path:
        original = original[part]
    value = bad if not isinstance(bad, str) else f"{original[:3]}{bad}{original[3:]}"
    error = _refused(_with(item, path, value))
    field = _field_name(path)
    # A pbx_id that must equal this field is checked after data: the error is this field's.
    assert error.field == field, (error.message, field)


@pytest.mark.parametrize(
    ("event", "seed", "path"), STRING_FIELDS, ids=[f"{e}:{p}" for e, _, p in STRING_FIELDS]
)
def test_line_breaks_only_in_multi_line_text(event: str, seed: int, path: tuple[Any, ...]) -> None:
    item = _request(event, seed)
    changed = _with(item, path, "first line\r\n\tsecond line")
    if _is_multi_line(path):
        _, _, _, data, _ = validate_publish_item(changed)
        value: Any = data
        for part in path:
            value = value[part]
        assert value == "first line\r\n\tsecond line"
    else:
        assert _refused(changed).field == _field_name(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("audio_url", "https://files.example.com/" + "a" * 4071),  # 4,097 characters
        ("audio_url", "https://files.example.com/a\x00.mp3"),
        ("audio_url", "https://files.example.com/a\x7f.mp3"),
        ("mailbox", "١٢٣"),  # Arabic-Indic digits: not the documented ASCII digits
        ("caller", "+1٤١٥٥٥٥٠١٢٣"),
        ("duration", float("inf")),
    ],
)
def test_other_documented_limits(field: str, value: object) -> None:
    item = _request("voicemail")
    item["data"][field] = value
    assert _refused(item).field == f"data.{field}"


def test_infinite_and_nan_floats_are_refused() -> None:
    for value in (float("inf"), float("-inf"), float("nan")):
        item = _request("rating")
        item["data"]["jitter_ms"] = value
        assert _refused(item).field == "data.jitter_ms"


# --- Timestamps: the accepted range ---------------------------------------------------------------
def _time_fields(event: str) -> list[str]:
    data = _request(event)["data"]
    return [
        k for k, v in data.items() if isinstance(v, str) and (k.endswith("_at") or k == "timestamp")
    ]


TIME_FIELDS = [(e, f) for e in ALL_EVENTS for f in _time_fields(e)]
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",  # overflowed converting to UTC: a 500 before
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00Z",
    "0999-06-01T00:00:00Z",  # written back as "999-06-01…" before
    "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:59:59+01:00",
]


@pytest.mark.parametrize(("event", "field"), TIME_FIELDS, ids=[f"{e}.{f}" for e, f in TIME_FIELDS])
@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_times_outside_the_range_are_refused_naming_the_field(
    event: str, field: str, value: str
) -> None:
    item = _request(event)
    item["data"][field] = value
    error = _refused(item)
    assert error.message == f"data.{field}: value {RANGE}"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
        ("1970-01-01T01:00:00+01:00", "1970-01-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T22:59:59.999999-01:00", "9999-12-31T23:59:59.999Z"),
    ],
)
def test_the_edges_of_the_range_are_accepted_and_written_in_utc(value: str, written: str) -> None:
    item = {**_request("test"), "data": {"message": "edge", "timestamp": value}}
    assert validate_publish_item(item)[3]["timestamp"] == written


# --- The fast path's faults surface ---------------------------------------------------------------
def test_a_fault_in_the_fast_path_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_data: Any) -> dict[str, Any]:
        raise ZeroDivisionError("a bug in generated code")

    monkeypatch.setitem(FAST, "sms", broken)
    with pytest.raises(ZeroDivisionError):
        validate_data("sms", _request("sms")["data"])


def test_an_unsure_fast_path_leaves_the_answer_to_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsure(_data: Any) -> dict[str, Any]:
        raise Unsure

    data = _request("sms")["data"]
    expected = validate_data("sms", data)
    monkeypatch.setitem(FAST, "sms", unsure)
    assert validate_module.validate_data("sms", data) == expected
