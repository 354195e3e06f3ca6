"""The retry schedule: pure, with the clock reading and randomness passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core import retry

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


class Fixed:
    """Randomness that always returns the same point of the range (0 = low, 1 = high)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.at


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [
        (1, 5),
        (2, 30),
        (3, 120),
        (4, 600),
        (5, 1800),
        (6, 3600),
        (7, 7200),
        (8, 14400),
        (9, 28800),
        (10, 28800),
        (15, 28800),
    ],
)
def test_base_delays(attempt: int, seconds: float) -> None:
    assert retry.base_delay(attempt) == seconds


def test_schedule_without_jitter_ends_within_24_hours() -> None:
    now, attempts = T0, 1
    times = [0.0]
    while (
        when := retry.next_attempt_at(
            policy="exponential", attempt_number=attempts, created_at=T0, now=now, rng=Fixed(0.5)
        )
    ) is not None:
        now, attempts = when, attempts + 1
        times.append((now - T0).total_seconds())
    assert times[:6] == [0, 5, 35, 155, 755, 2555]
    assert times[-1] <= 24 * 3600
    assert times[-1] + 28800 > 24 * 3600  # the next one would fall outside the window
    assert attempts == 11


@pytest.mark.parametrize(("at", "factor"), [(0.0, 0.8), (1.0, 1.2)])
def test_jitter_is_plus_minus_20_percent(at: float, factor: float) -> None:
    when = retry.next_attempt_at(
        policy="exponential", attempt_number=2, created_at=T0, now=T0, rng=Fixed(at)
    )
    assert when == T0 + timedelta(seconds=30 * factor)


def test_none_policy_never_retries() -> None:
    assert (
        retry.next_attempt_at(
            policy="none", attempt_number=1, created_at=T0, now=T0, rng=random.Random(0)
        )
        is None
    )


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(120, 120), (1, 5), (10_000, retry.MAX_RETRY_AFTER), (None, 5)],
)
def test_retry_after_is_honoured_within_bounds(retry_after: float | None, expected: float) -> None:
    when = retry.next_attempt_at(
        policy="exponential",
        attempt_number=1,
        created_at=T0,
        now=T0,
        rng=Fixed(0.5),
        retry_after=retry_after,
    )
    assert when == T0 + timedelta(seconds=expected)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("  7 ", 7.0),
        ("Thu, 15 Jan 2026 10:32:00 GMT", 120.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("Thu, 15 Jan 2026 10:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert retry.parse_retry_after(header, now=T0) == expected


#: Retry-After values an endpoint can send that are not a hint we can use: each means the normal
#: schedule (None), never an exception. The first is the issue's example.
HOSTILE_RETRY_AFTER = [
    "①",  # a digit to str.isdigit, not to int() or float()
    "١٢٠",  # Arabic-Indic digits: int() would read 120; HTTP would not
    "１２０",  # fullwidth digits
    "²",
    "-5",
    "+5",
    "1.5",
    "1e3",
    "0x10",
    "inf",
    "nan",
    "12 0",
    "\x00",
    "120\x00",
    "\udcff\udcfe",  # undecodable bytes as aiohttp hands them over
    "Ã©tÃ©",  # latin-1 read as UTF-8
    "9" * 65,  # longer than any real value
    "Thu, 15 Jan 2026 10:32:00 -0000",  # local time, unknown zone
    "Mon, 01 Jan 99999 00:00:00 GMT",  # year out of range
    "Mon, 32 Jan 2026 00:00:00 GMT",
    "Mon, 29 Feb 2025 00:00:00 GMT",  # not a leap year
    "Mon, 01 Jan 2026 24:00:00 GMT",
    "Mon, 01 Jan 2026 00:00:60 GMT",
    "Mon, 01 Jan 2026 00:00:00 +9999",  # an offset of four days
    "Mon, 01 Jan 2026 00:00:00 +99999999999999999999",  # OverflowError inside email.utils
    "Thu, 15 Jan ２０２６ 10:32:00 GMT",  # non-ASCII digits inside a date
    "Thu, 15 Jan 2026",
    "GMT",
    ",",
    " \t ",
]


@pytest.mark.parametrize("header", HOSTILE_RETRY_AFTER)
def test_hostile_retry_after_means_no_hint(header: str) -> None:
    assert retry.parse_retry_after(header, now=T0) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        ("000120", 120.0),
        ("\t120\t", 120.0),
        ("3600", 3600.0),
        ("3601", retry.MAX_RETRY_AFTER),
        ("9" * 64, retry.MAX_RETRY_AFTER),  # huge: clamped, never inf or an overflow
        ("Fri, 31 Dec 9999 23:59:59 GMT", retry.MAX_RETRY_AFTER),  # the calendar's last second
        ("Fri, 31 Dec 9999 23:59:59 -2359", retry.MAX_RETRY_AFTER),
        ("Mon, 01 Jan 0100 00:00:00 +0000", 0.0),  # long past
        ("Sat, 01 Jan 0001 00:00:00 +2359", 0.0),  # two-digit-year rules read it as 2001
        ("Thu, 15 Jan 2026 10:32:00 +0000", 120.0),
        ("Thu, 15 Jan 2026 11:32:00 +0100", 120.0),
        ("Thursday, 15-Jan-26 10:32:00 GMT", 120.0),  # RFC 850, obsolete but allowed
        ("Thu Jan 15 10:32:00 2026", None),  # asctime carries no zone: not trusted
    ],
)
def test_retry_after_edges(header: str, expected: float | None) -> None:
    assert retry.parse_retry_after(header, now=T0) == expected


@given(
    value=st.one_of(
        st.text(max_size=80),
        st.text(alphabet="0123456789 \t", max_size=80),
        # Any bytes, decoded as aiohttp decodes header values.
        st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape")),
    )
)
def test_parse_retry_after_never_raises_and_stays_in_bounds(value: str) -> None:
    seconds = retry.parse_retry_after(value, now=T0)
    assert seconds is None or 0.0 <= seconds <= retry.MAX_RETRY_AFTER
    if value.strip(" \t").isascii() and value.strip(" \t").isdigit() and len(value) <= 64:
        assert seconds == min(int(value.strip(" \t")), retry.MAX_RETRY_AFTER)


@given(
    when=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_any_http_date_is_read_and_clamped(when: datetime) -> None:
    header = format_datetime(when.replace(microsecond=0), usegmt=True)
    seconds = retry.parse_retry_after(header, now=T0)
    if when.year < 1000:
        # email.utils reads years of fewer than four digits by the two-digit-year rules.
        assert seconds is not None
        return
    expected = (when.replace(microsecond=0) - T0).total_seconds()
    assert seconds == min(max(0.0, expected), retry.MAX_RETRY_AFTER)


@given(value=st.text(max_size=40), attempt=st.integers(1, 20), seed=st.integers(0, 2**32))
def test_any_retry_after_gives_a_time_inside_the_window_or_none(
    value: str, attempt: int, seed: int
) -> None:
    when = retry.next_attempt_at(
        policy="exponential",
        attempt_number=attempt,
        created_at=T0,
        now=T0,
        rng=random.Random(seed),
        retry_after=retry.parse_retry_after(value, now=T0),
    )
    assert when is None or T0 < when <= T0 + retry.WINDOW


@pytest.mark.parametrize(
    ("elapsed", "expired"),
    [
        (timedelta(0), False),
        (retry.WINDOW, False),
        (retry.WINDOW + retry.LATE_GRACE, False),
        (retry.WINDOW + retry.LATE_GRACE + timedelta(microseconds=1), True),
        (timedelta(days=400), True),
    ],
)
def test_window_expired(elapsed: timedelta, expired: bool) -> None:
    assert retry.window_expired(T0, T0 + elapsed) is expired


@given(attempt=st.integers(1, 50), elapsed=st.floats(0, 30 * 3600), seed=st.integers(0, 2**32))
def test_next_attempt_is_after_now_and_inside_the_window(
    attempt: int, elapsed: float, seed: int
) -> None:
    now = T0 + timedelta(seconds=elapsed)
    when = retry.next_attempt_at(
        policy="exponential",
        attempt_number=attempt,
        created_at=T0,
        now=now,
        rng=random.Random(seed),
    )
    if when is not None:
        assert when > now
        assert when <= T0 + retry.WINDOW


def test_unknown_policy_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown retry policy"):
        retry.next_attempt_at(
            policy="linear", attempt_number=1, created_at=T0, now=T0, rng=Fixed(0)
        )
