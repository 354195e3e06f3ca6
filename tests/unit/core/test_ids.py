"""Ids: prefixed, 26-character, sortable by creation time, deterministic for a seed."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core.clock import FakeClock, rfc3339, rfc3339_seconds
from callhook.core.ids import (
    created_at,
    has_id_shape,
    id_from_bytes,
    id_pattern,
    id_to_bytes,
    new_id,
    new_ids,
    sortable_id,
)

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def test_shape() -> None:
    value = new_id("evt", T0, random.Random(1))
    assert value.startswith("evt_")
    assert len(value) == 4 + 26


def test_same_seed_same_id() -> None:
    assert new_id("evt", T0, random.Random(5)) == new_id("evt", T0, random.Random(5))


@given(a=st.integers(0, 10**9), b=st.integers(0, 10**9))
def test_ids_sort_by_time(a: int, b: int) -> None:
    rng = random.Random(0)
    ta, tb = T0 + timedelta(milliseconds=a), T0 + timedelta(milliseconds=b)
    ia, ib = sortable_id(ta, rng), sortable_id(tb, rng)
    if a < b:
        assert ia < ib
    elif a > b:
        assert ia > ib


def test_rfc3339_forms() -> None:
    when = T0 + timedelta(microseconds=123456)
    assert rfc3339(when) == "2026-01-15T10:30:00.123Z"
    assert rfc3339_seconds(when) == "2026-01-15T10:30:00Z"


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(T0)
    assert clock.now() == T0
    clock.advance(1.5)
    assert clock.now() == T0 + timedelta(seconds=1.5)


@given(count=st.integers(0, 300), seed=st.integers(0, 2**32))
def test_new_ids_in_bulk(count: int, seed: int) -> None:
    ids = new_ids("dlv", T0, count, random.Random(seed))
    assert len(ids) == count
    assert len(set(ids)) == count
    single = new_id("dlv", T0, random.Random(seed))
    for value in ids:
        assert value.startswith("dlv_")
        assert len(value) == 4 + 26
        assert value[:14] == single[:14]  # prefix and the 10 characters of time


@given(
    when=st.datetimes(datetime(1970, 1, 1), datetime(9999, 12, 30), timezones=st.just(UTC)),
    seed=st.integers(0, 2**32),
    prefix=st.sampled_from(["dlv", "evt", "ep", "tok"]),
)
def test_every_id_made_has_the_shape_and_tells_its_millisecond(
    when: datetime, seed: int, prefix: str
) -> None:
    value = new_id(prefix, when, random.Random(seed))
    assert has_id_shape(prefix, value)
    assert re.fullmatch(id_pattern(prefix), value)
    assert created_at(value) == when.replace(microsecond=when.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    "value",
    [
        "dlv_81KF0K8Y20PDDGMEPHX7DTC6DB",  # 130 bits: more than an id holds
        "dlv_01KF0K8Y20PDDGMEPHX7DTC6DU",  # U, I, L and O are not Crockford digits
        "dlv_01KF0K8Y20PDDGMEPHX7DTC6DI",
        "dlv_01KF0K8Y20PDDGMEPHX7DTC6DL",
        "dlv_01KF0K8Y20PDDGMEPHX7DTC6DO",
        "dlv_01KF0K8Y20PDDGMEPHX7DTC6D",
        "dlv_01kf0k8y20pddgmephx7dtc6db",
    ],
)
def test_values_no_id_can_have_are_refused(value: str) -> None:
    assert not has_id_shape("dlv", value)
    assert not re.fullmatch(id_pattern("dlv"), value)
    with pytest.raises(ValueError, match="not an id"):
        created_at(value)


def test_an_id_whose_time_is_past_the_year_9999_is_refused() -> None:
    # 48 bits of milliseconds go past the year 9999: such a value (never made) has the shape of
    # an id but no time a datetime can hold, one millisecond added.
    value = "dlv_7ZZZZZZZZZ0000000000000000"
    assert re.fullmatch(id_pattern("dlv"), value)  # the pattern cannot tell; the check does
    assert not has_id_shape("dlv", value)
    with pytest.raises(ValueError, match="not an id"):
        created_at(value)
    last = new_id("dlv", datetime(9999, 12, 31, 23, 59, 59, 998000, tzinfo=UTC))
    assert created_at(last) + timedelta(milliseconds=1) == datetime.max.replace(
        microsecond=999000, tzinfo=UTC
    )


def _id_of(prefix: str, bits: int) -> str:
    """The id of 128 ``bits``, spelled out digit by digit (Crockford base32)."""
    digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return prefix + "_" + "".join(digits[(bits >> s) & 31] for s in range(125, -1, -5))


_ANY_ID = st.builds(
    _id_of, st.sampled_from(["acc", "ep", "evt", "dlv"]), st.integers(0, 2**128 - 1)
)


@given(value=_ANY_ID)
def test_an_id_is_16_bytes_and_back(value: str) -> None:
    prefix = value.split("_")[0]
    raw = id_to_bytes(prefix, value)
    assert raw is not None
    assert len(raw) == 16
    assert id_from_bytes(prefix, raw) == value


@given(a=st.integers(0, 2**128 - 1), b=st.integers(0, 2**128 - 1))
def test_bytes_sort_as_the_ids_do(a: int, b: int) -> None:
    # SQLite compares BLOBs with memcmp: byte order must be the text's order.
    ra, rb = id_to_bytes("evt", _id_of("evt", a)), id_to_bytes("evt", _id_of("evt", b))
    assert ra is not None
    assert rb is not None
    assert (ra < rb) == (_id_of("evt", a) < _id_of("evt", b)) == (a < b)


@pytest.mark.parametrize(
    ("prefix", "value"),
    [
        ("dlv", "evt_01KF0K8Y20PDDGMEPHX7DTC6DB"),  # another prefix
        ("ep", "ep_01KF0K8Y20PDDGMEPHX7DTC6DBX"),  # too long
        ("dlv", "dlv_81KF0K8Y20PDDGMEPHX7DTC6DB"),  # 130 bits
        ("dlv", "dlv_01kf0k8y20pddgmephx7dtc6db"),  # lower case: not what new_id makes
        ("dlv", "dlv_1"),
        ("acc", "acc_"),
        ("acc", ""),
        ("acc", "acc_01KF0K8Y20PDDGMEPHX7DTC6D\x00"),
    ],
)
def test_strings_without_an_ids_shape_have_no_byte_form(prefix: str, value: str) -> None:
    assert id_to_bytes(prefix, value) is None


@pytest.mark.parametrize("length", [0, 15, 17])
def test_only_16_bytes_are_an_id(length: int) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        id_from_bytes("evt", bytes(length))
