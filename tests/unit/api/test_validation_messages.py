"""A value refused for not matching a pattern is told the rule in words, never the regular
expression: request parameters (``callhook.api.errors``) and published data
(``callhook.events.validate``) alike."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, Field, ValidationError

from callhook.api.errors import _validation_message
from callhook.errors import PayloadInvalid
from callhook.events import sample_data
from callhook.events.models import PATTERN_RULES, PBX_ID_PATTERN, PBX_ID_RULE, pattern_rule
from callhook.events.validate import validate_data


def _errors(pattern: str, value: str) -> list[dict[str, object]]:
    class Query(BaseModel):
        value: str = Field(pattern=pattern)

    with pytest.raises(ValidationError) as caught:
        Query(value=value)
    return [dict(e) for e in caught.value.errors()]


def test_an_id_pattern_gives_the_rule_of_ids() -> None:
    [err] = _errors(PBX_ID_PATTERN, "call 1")
    assert _validation_message(err) == PBX_ID_RULE


@pytest.mark.parametrize("pattern", [*PATTERN_RULES, r"^[a-z]+$", r"^x{2}$"])
def test_no_pattern_is_ever_quoted(pattern: str) -> None:
    [err] = _errors(pattern, "\x00")
    message = _validation_message(err)
    assert pattern not in message
    assert "pattern" not in message
    assert message == pattern_rule(pattern)


def test_other_errors_keep_pydantics_message() -> None:
    err = {"type": "string_too_long", "msg": "String should have at most 64 characters"}
    assert _validation_message(err) == "String should have at most 64 characters"


@pytest.mark.parametrize(
    ("event", "field", "value", "message"),
    [
        ("voicemail", "mailbox", "1", "value must be 2 to 8 digits"),
        ("voicemail", "mailbox", "12a", "value must be 2 to 8 digits"),
        ("speech", "language", "english", "value must be a language tag such as en or en-US"),
    ],
)
def test_published_data_is_told_the_rule_in_words(
    event: str, field: str, value: str, message: str
) -> None:
    _, sample = sample_data(event, random.Random(1), now=datetime(2026, 1, 15, tzinfo=UTC))
    data = {**sample, field: value}
    with pytest.raises(PayloadInvalid) as caught:
        validate_data(event, data)
    assert str(caught.value.message) == f"data.{field}: {message}"
