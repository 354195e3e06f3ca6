"""core.times: the one accepted range and RFC 3339 reading; clock.rfc3339: four-digit years."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core import times
from callhook.core.clock import rfc3339, rfc3339_seconds
from callhook.core.ids import has_id_shape
from callhook.errors import PayloadInvalid

RANGE = "must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"
NUMBER = "not a number (Unix time is not accepted)"
SHAPE = "must be an RFC 3339 date-time with a time zone"
WRITTEN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-01-15T10:30:00Z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15T11:30:00.250+01:00", datetime(2025, 1, 15, 10, 30, 0, 250_000, tzinfo=UTC)),
        ("2025-01-15t10:30:00z", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15 10:30:00-00:00", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15T10:30:00.123456789Z", datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)),
        # The edges of the range, exactly.
        ("1970-01-01T00:00:00Z", times.EARLIEST),
        ("1970-01-01T01:00:00+01:00", times.EARLIEST),
        ("1969-12-31T23:00:00-01:00", times.EARLIEST),
        ("9999-12-31T23:59:59.999999Z", times.LATEST),
        ("9999-12-31T23:59:59.999999999Z", times.LATEST),
        ("9999-12-31T23:59:59.999999+00:00", times.LATEST),
    ],
)
def test_accepted(raw: str, expected: datetime) -> None:
    when = times.parse_rfc3339(raw)
    assert when == expected
    assert when.tzinfo is UTC


@pytest.mark.parametrize("raw", ["2025-01-15", "yesterday", "2025-01-15T10", "10:30", ""])
def test_the_command_lines_refusal_names_both_forms_it_takes(raw: str) -> None:
    # It takes a time without a zone (as UTC): "with a time zone" would send people wrong.
    with pytest.raises(times.TimeInvalid) as info:
        times.parse_rfc3339(raw, local_is_utc=True)
    assert "with a time zone" not in str(info.value)
    assert times.EXAMPLE in str(info.value)
    assert times.LOCAL_EXAMPLE in str(info.value)
    # And the form it names is taken, as UTC.
    local = times.parse_rfc3339(times.LOCAL_EXAMPLE, local_is_utc=True)
    assert local == times.parse_rfc3339(times.LOCAL_EXAMPLE + ":00Z")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # Class 3's examples: valid RFC 3339 that overflows once converted to UTC.
        ("0001-01-01T00:00:00+01:00", RANGE),
        ("9999-12-31T23:59:59-01:00", RANGE),
        ("9999-12-31T23:00:00-23:59", RANGE),
        ("0001-01-01T00:00:00Z", RANGE),
        ("0999-06-01T00:00:00Z", RANGE),
        ("1969-12-31T23:59:59.999999Z", RANGE),
        ("1970-01-01T00:30:00+01:00", RANGE),
        # Numbers where a time belongs: Unix seconds or milliseconds, as text or as JSON.
        ("0", NUMBER),
        (0, NUMBER),
        ("1700000000", NUMBER),
        (1700000000, NUMBER),
        ("1700000000000", NUMBER),
        (1.7e9, NUMBER),
        ("-1", NUMBER),
        (" 12.5 ", NUMBER),
        ("1e9", NUMBER),
        # Not RFC 3339 with a zone.
        ("2025-01-15", SHAPE),
        ("2025-01-15T10:30:00", SHAPE),
        ("2025-01-15T10:30Z", SHAPE),
        ("20250115T103000Z", SHAPE),
        ("2025-W03", SHAPE),
        ("yesterday", SHAPE),
        ("", SHAPE),
        ("２０２５-01-15T10:30:00Z", SHAPE),
        ("2025-01-15T10:30:00Z\n", SHAPE),
        ("2025-01-15T10:30:00\x00Z", SHAPE),
        ("+12025-01-15T10:30:00Z", SHAPE),
        # Impossible dates, times and offsets.
        ("2025-02-30T00:00:00Z", "is not a valid date and time"),
        ("2025-01-15T24:00:00Z", "is not a valid date and time"),
        ("2025-01-15T23:59:60Z", "is not a valid date and time"),
        ("2025-01-15T10:30:00+24:00", "is not a valid date and time"),
        ("0000-01-01T00:00:00Z", "is not a valid date and time"),
        # Not text at all.
        (None, "string"),
        (True, "string"),
        ([], "string"),
        ({"at": "2025-01-15T10:30:00Z"}, "string"),
    ],
)
def test_refused_with_the_reason(raw: object, reason: str) -> None:
    with pytest.raises(times.TimeInvalid) as info:
        times.parse_rfc3339(raw)
    assert reason in str(info.value)
    with pytest.raises(PayloadInvalid) as named:
        times.time_field(raw, "since")
    assert named.value.field == "since"
    assert named.value.message == f"since: {info.value}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-01-15T10:30", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
        ("2025-01-15 10:30:05", datetime(2025, 1, 15, 10, 30, 5, tzinfo=UTC)),
        ("2025-01-15T10:30:05.5", datetime(2025, 1, 15, 10, 30, 5, 500_000, tzinfo=UTC)),
        ("2025-01-15T11:30:00+01:00", datetime(2025, 1, 15, 10, 30, tzinfo=UTC)),
    ],
)
def test_people_may_leave_out_the_zone_where_allowed(raw: str, expected: datetime) -> None:
    assert times.parse_rfc3339(raw, local_is_utc=True) == expected
    with pytest.raises(times.TimeInvalid):
        times.parse_rfc3339(raw.replace("+01:00", ""))  # the API never guesses a zone


@pytest.mark.parametrize("raw", ["1969-12-31T23:59", "0001-01-01T00:00", "2025-01-15"])
def test_the_zoneless_form_has_the_same_range_and_shape(raw: str) -> None:
    with pytest.raises(times.TimeInvalid):
        times.parse_rfc3339(raw, local_is_utc=True)


_OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def _written(draw: st.DrawFn) -> tuple[str, datetime]:
    """Any RFC 3339 text Python can represent (years 1..9999, any offset) and its naive time."""
    local = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    zone = draw(_OFFSETS)
    offset = zone.utcoffset(None)
    minutes = int(offset.total_seconds() // 60)
    sign, minutes = ("+", minutes) if minutes >= 0 else ("-", -minutes)
    text = f"{local.year:04d}-{local:%m-%dT%H:%M:%S}.{local.microsecond:06d}"
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}", local.replace(tzinfo=zone)


@given(_written())
def test_any_representable_time_is_read_exactly_or_refused_for_its_range(
    case: tuple[str, datetime],
) -> None:
    text, aware = case
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is not None and times.EARLIEST <= utc <= times.LATEST:
        assert times.parse_rfc3339(text) == utc
    else:
        with pytest.raises(times.TimeInvalid, match=RANGE):
            times.parse_rfc3339(text)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_OFFSETS)
)
def test_every_time_is_written_with_a_four_digit_year(when: datetime) -> None:
    text = rfc3339(when)
    assert WRITTEN.fullmatch(text), text
    assert datetime.fromisoformat(text) == when.replace(microsecond=when.microsecond // 1000 * 1000)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", rfc3339_seconds(when))


def test_years_before_1000_are_zero_padded() -> None:
    # strftime("%Y") writes "999-06-01…", which is not RFC 3339.
    assert rfc3339(datetime(999, 6, 1, tzinfo=UTC)) == "0999-06-01T00:00:00.000Z"
    assert rfc3339_seconds(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("prefix", "value", "expected"),
    [
        ("dlv", "dlv_01KF0K8Y20PDDGMEPHX7DTC6DB", True),
        ("dlv", "evt_01KF0K8Y20PDDGMEPHX7DTC6DB", False),
        ("dlv", "dlv_01KF0K8Y20PDDGMEPHX7DTC6D", False),
        ("dlv", "dlv_01KF0K8Y20PDDGMEPHX7DTC6DB\x00", False),
        ("dlv", "dlv_\x00", False),
        ("dlv", "dlv_01kf0k8y20pddgmephx7dtc6db", False),
        ("tok", "tok_01KF0K8Y20PDDGMEPHX7DTC6DB", True),
        ("tok", "", False),
    ],
)
def test_id_shape(prefix: str, value: str, expected: bool) -> None:
    assert has_id_shape(prefix, value) is expected
