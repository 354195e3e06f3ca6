"""Request validation messages (``callhook.api.errors``): a pattern is said in words."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from callhook.api.errors import _validation_message
from callhook.events.models import PBX_ID_PATTERN, PBX_ID_RULE


def _errors(pattern: str, value: str) -> list[dict[str, object]]:
    class Query(BaseModel):
        value: str = Field(pattern=pattern)

    with pytest.raises(ValidationError) as caught:
        Query(value=value)
    return [dict(e) for e in caught.value.errors()]


def test_an_id_pattern_gives_the_rule_of_ids() -> None:
    [err] = _errors(PBX_ID_PATTERN, "call 1")
    assert _validation_message(err) == PBX_ID_RULE


@given(st.from_regex(r"\^[a-z]{1,5}\$", fullmatch=True))
def test_no_pattern_is_ever_quoted(pattern: str) -> None:
    [err] = _errors(pattern, "0")
    message = _validation_message(err)
    assert pattern not in message
    assert message == "value has a character or a form not allowed here"


def test_other_errors_keep_pydantics_message() -> None:
    err = {"type": "string_too_long", "msg": "String should have at most 128 characters"}
    assert _validation_message(err) == "String should have at most 128 characters"
