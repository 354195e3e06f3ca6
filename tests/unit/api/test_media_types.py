"""Which ``Content-Type`` values count as JSON (issue 11, class 10): exactly ``application/json``
and ``application/*+json``, parameters allowed, a charset only if UTF-8."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.api.body import is_json_media_type

JSON = [
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    'application/json;charset="UTF-8"',
    "application/json; charset=utf8",
    "application/json;",
    "application/json ; v=1",
    "application/cloudevents+json",
    "application/vnd.api+json; ext=x",
    "APPLICATION/PROBLEM+JSON",
]
NOT_JSON = [
    None,
    "",
    "text/notjson",  # the example of the issue: ends in "json"
    "text/json",
    "application/jsonx",
    "application/x-json",
    "application/+json",
    "application/json+xml",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "application/json; foo",
    "application/json, text/plain",
    "application/json\x00",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "*/*",
    "application/*",
    "json",
    "application json",
]


@pytest.mark.parametrize("value", JSON)
def test_json_media_types(value: str) -> None:
    assert is_json_media_type(value)


@pytest.mark.parametrize("value", NOT_JSON)
def test_other_media_types(value: str | None) -> None:
    assert not is_json_media_type(value)


TCHAR = st.sampled_from(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+.^_`|~-"
)
TOKENS = st.text(TCHAR, min_size=1, max_size=12)


@given(kind=TOKENS, subtype=TOKENS)
def test_only_application_json_and_structured_json_suffixes_are_json(
    kind: str, subtype: str
) -> None:
    expected = kind.lower() == "application" and (
        subtype.lower() == "json" or (subtype.lower().endswith("+json") and len(subtype) > 5)
    )
    assert is_json_media_type(f"{kind}/{subtype}") is expected
    assert is_json_media_type(f"{kind}/{subtype}; charset=utf-8") is expected


@given(st.text(max_size=60))
def test_anything_accepted_names_application_json_or_a_json_suffix(value: str) -> None:
    if is_json_media_type(value):
        essence = value.split(";")[0].strip().lower()
        assert essence == "application/json" or (
            essence.startswith("application/") and essence.endswith("+json")
        )
