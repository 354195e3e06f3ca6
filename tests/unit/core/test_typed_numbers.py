"""Numbers typed in the dashboard and the CLI are read as strictly as the API reads JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.core.typed_numbers import decimal_number, whole_number


@pytest.mark.parametrize(
    "text", ["٣", "６０", "1_000", "+60", "-5", "1e3", "3.0", "", " ", "0x10", "9" * 5000]
)
def test_whole_number_refuses_what_int_would_take_and_json_would_not(text: str) -> None:
    assert whole_number(text) is None


@pytest.mark.parametrize(("text", "value"), [("60", 60), (" 300 ", 300), ("0", 0), ("007", 7)])
def test_whole_number_reads_ascii_digits(text: str, value: int) -> None:
    assert whole_number(text) == value


@pytest.mark.parametrize(
    "text",
    ["nan", "inf", "-1", "1_0.5", "٣.5", "1e3", "1.2.3", ".", "+2", "", "Infinity", "9" * 5000],
)
def test_decimal_number_refuses_what_float_would_take_and_json_would_not(text: str) -> None:
    assert decimal_number(text) is None


@pytest.mark.parametrize(("text", "value"), [("2.5", 2.5), ("10", 10.0), (".5", 0.5), ("3.", 3.0)])
def test_decimal_number_reads_ascii_decimals(text: str, value: float) -> None:
    assert decimal_number(text) == value


@given(st.text(max_size=12))
def test_whole_number_is_some_exactly_for_ascii_digits(text: str) -> None:
    stripped = text.strip()
    expected = stripped.isascii() and stripped.isdigit() and len(stripped) <= 30
    assert (whole_number(text) is not None) == expected
    if expected:
        assert whole_number(text) == int(stripped)
