"""The generated fast path of validate_data against the pydantic models it is built from.

Contract (``callhook.events.fast``): for any input, the fast check either returns exactly what
``model_validate(...).model_dump(mode="json", exclude_none=True, by_alias=True)`` returns (same
keys, same order, same values) or raises ``Unsure``; it never accepts what the model refuses.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callhook.events import ALL_EVENTS, MODELS, sample_data, validate_data
from callhook.events.fast import FAST, Unsure, compile_model

NOW = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def _slow(event: str, data: object) -> dict[str, Any] | None:
    """What the model says: its dump, or None when it refuses the data."""
    try:
        model = MODELS[event].model_validate(data)
    except ValidationError:
        return None
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def _fast(event: str, data: object) -> dict[str, Any] | None:
    try:
        return FAST[event](data)
    except Unsure:
        return None


def _assert_agrees(event: str, data: object) -> None:
    fast = _fast(event, copy.deepcopy(data))
    if fast is None:
        return  # pydantic decides: nothing to compare
    slow = _slow(event, data)
    assert slow is not None, f"fast path accepted what the model refuses: {event} {data!r}"
    assert orjson.dumps(fast) == orjson.dumps(slow)  # same keys, order and values


def test_every_event_has_a_fast_check() -> None:
    # A model using a construct fast.py does not know stays correct (pydantic alone) but slow;
    # extend fast.py rather than dropping the model from this test.
    assert set(FAST) == set(ALL_EVENTS)


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_samples_take_the_fast_path_with_the_models_result(event: str) -> None:
    for seed in range(40):
        _, data = sample_data(event, random.Random(seed), now=NOW)
        fast = _fast(event, data)
        assert fast is not None, data
        assert orjson.dumps(fast) == orjson.dumps(_slow(event, data))
        assert orjson.dumps(validate_data(event, data)) == orjson.dumps(fast)


_TIMESTAMPS = [
    "2026-01-15T10:30:00Z",
    "2026-01-15T10:30:00.1Z",
    "2026-01-15T10:30:00.123Z",
    "2026-01-15T10:30:00.123456Z",
    "2026-01-15T10:30:00.1234567Z",
    "2026-01-15T11:30:00.5+01:00",
    "2026-01-15T00:10:00-23:59",
    "2026-01-15T10:30:00+24:00",
    "2026-01-15T10:30:00-00:00",
    "2026-01-15t10:30:00z",
    "2026-01-15 10:30:00Z",
    "2026-01-15T10:30:00",
    "2026-01-15T24:00:00Z",
    "2026-01-15T23:59:60Z",
    "2026-02-29T10:30:00Z",
    "2024-02-29T10:30:00Z",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00+00:30",
    "2999-12-31T23:59:59.999999-12:00",
    "0001-01-01T00:00:00Z",
    # The accepted range (core.times) and its edges, also shifted by offsets.
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59.999Z",
    "0999-06-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z",
    "1970-01-01T00:00:00Z",
    "1970-01-01T00:59:59+01:00",
    "1970-01-01T01:00:00+01:00",
    "1969-12-31T23:30:00-00:30",
    "２０２６-01-15T10:30:00Z",
    "2026-01-15T10:30:00Z\n",
    "",
]


@pytest.mark.parametrize("value", _TIMESTAMPS)
def test_timestamps(value: str) -> None:
    _assert_agrees("test", {"message": "hi", "timestamp": value})


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        ("summary", "text", "Line one.\n\tLine two.\r\n"),
        ("sms", "text", "Hi,\nis my order shipped?"),
        ("voicemail", "audio_url", "https://files.example.com/" + "a" * 4070),
        ("test", "timestamp", "1970-01-01T00:00:00Z"),
        ("test", "timestamp", "2999-12-31T23:59:59.999+01:00"),
    ],
)
def test_valid_values_at_the_new_limits_stay_on_the_fast_path(
    event: str, field: str, value: str
) -> None:
    _, data = sample_data(event, random.Random(0), now=NOW)
    data[field] = value
    fast = _fast(event, data)
    assert fast is not None
    assert orjson.dumps(fast) == orjson.dumps(_slow(event, data))


def test_times_before_the_start_and_answered_without_time_are_left_to_pydantic() -> None:
    _, data = sample_data("incoming_call_end", random.Random(1), now=NOW)
    early = {**data, "ended_at": "2000-01-01T00:00:00Z"}
    assert _fast("incoming_call_end", early) is None
    _, data = sample_data("outgoing_call_end", random.Random(1), now=NOW)
    unanswered = {k: v for k, v in data.items() if k != "answered_at"}
    assert _fast("outgoing_call_end", {**unanswered, "disposition": "answered"}) is None
    assert _fast("outgoing_call_end", {**unanswered, "disposition": "busy"}) is not None


# --- Generated variations of valid data ---------------------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 1, 5, 100, 101, 604800, 604801, -1, 2**53, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 4.99, 5.0, 5.01, -0.0, 100.0, 1e308]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "+14155550123",
            "+1415555012",
            "+1٤١٥٥٥٥٠١٢٣",  # Arabic-Indic digits: Python's \\d takes them
            "+0415555012",
            "call_01JH8Z",
            "has space",
            "a\x00b",
            "line\nbreak",
            "tab\there",
            "esc\x1b[0m",
            "c1\x85",
            "del\x7f",
            "lone\ud800",
            "https://files.example.com/a\x00.mp3",
            "https://files.example.com/" + "a" * 4071,
            "x" * 128,
            "x" * 129,
            "12",
            "123456789",
            "١٢٣",
            "en-US",
            "en-us",
            "https://files.example.com/a.mp3",
            "http://files.example.com/a.mp3",
            "https:// bad",
            "inbound",
            "outbound",
            "answered",
            "agent",
            "positive",
            *_TIMESTAMPS,
        ]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def _variations(draw: st.DrawFn) -> tuple[str, Any]:
    event = draw(st.sampled_from(ALL_EVENTS))
    _, data = sample_data(event, random.Random(draw(st.integers(0, 50))), now=NOW)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        how = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        if how == "add" or not paths:
            data[draw(st.sampled_from(["extra", "from_", "FROM", "call_id"]))] = draw(_VALUES)
            continue
        *parent_path, last = draw(st.sampled_from(paths))
        parent = data
        for part in parent_path:
            parent = parent[part]
        if how == "drop":
            del parent[last]
        else:
            parent[last] = draw(_VALUES)
    return event, data


_EDGES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    1.5,
    2**53 + 1,
    float("nan"),
    float("inf"),
    "",
    " ",
    "12\n",
    "a\x00b",
    "x\ty",
    "x\r\ny",
    "x\x1by",
    "x\x9fy",
    "x\udfffy",
    "https://files.example.com/a\x01",
    "https://files.example.com/" + "a" * 4070,
    "https://files.example.com/" + "a" * 4071,
    "１２３",
    "١٢٣",  # Arabic-Indic digits (pydantic's Rust regex reads \\d as any Unicode digit)
    "+1٤١٥٥٥٥٠١٢٣",
    *("x" * n for n in (64, 65, 120, 121, 128, 129, 500, 501, 1600, 1601, 10000, 10001)),
    [],
    ["x" * 65],
    ["x"] * 101,
    [""],
    {},
]


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_edge_values_in_every_field_agree_with_the_model(event: str) -> None:
    for seed in range(3):
        _, data = sample_data(event, random.Random(seed), now=NOW)
        for *parent_path, last in _paths(data):
            for value in _EDGES:
                changed = copy.deepcopy(data)
                parent = changed
                for part in parent_path:
                    parent = parent[part]
                parent[last] = value
                _assert_agrees(event, changed)


@settings(max_examples=1500, deadline=None)
@given(_variations())
def test_variations_agree_with_the_model(case: tuple[str, Any]) -> None:
    _assert_agrees(*case)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_EVENTS), _VALUES)
def test_arbitrary_values_agree_with_the_model(event: str, data: Any) -> None:
    _assert_agrees(event, data)


# --- Constructs the fast path does not know ---------------------------------------------------
class _Strictly(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _WithModelValidator(_Strictly):
    name: str

    @model_validator(mode="after")
    def _check(self) -> _WithModelValidator:
        return self


class _Lax(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int


class _ExtraAllowed(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str


class _Alternation(_Strictly):
    kind: str = Field(pattern=r"^(a|b)$")


class _MultipleOf(_Strictly):
    count: int = Field(multiple_of=5)


class _DefaultValue(_Strictly):
    kind: Literal["a", "b"] = "a"


@pytest.mark.parametrize(
    "model",
    [_WithModelValidator, _Lax, _ExtraAllowed, _Alternation, _MultipleOf, _DefaultValue],
)
def test_unknown_constructs_leave_the_model_to_pydantic(model: type[BaseModel]) -> None:
    assert compile_model(model) is None
