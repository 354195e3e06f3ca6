"""docs/events.md is generated from the catalog and its examples still validate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callhook.cli.events import app
from callhook.events import ALL_EVENTS, CALL_EVENTS, DESCRIPTIONS, validate_publish_request
from callhook.events.docs import render_markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"
SECTION = re.compile(r"^### `(?P<event>[a-z_]+)`\n(?P<body>.*?)(?=^##|\Z)", re.M | re.S)
EXAMPLE = re.compile(r"```json\n(.*?)\n```", re.S)


def _sections() -> dict[str, str]:
    return {m["event"]: m["body"] for m in SECTION.finditer(DOC.read_text(encoding="utf-8"))}


def test_doc_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/events.md is stale: run `python -m callhook.events.docs > docs/events.md`"
    )


def test_cli_prints_the_doc() -> None:
    result = CliRunner().invoke(app, ["docs"])
    assert result.exit_code == 0, result.output
    assert result.stdout == render_markdown()


def test_every_event_has_a_section_in_order() -> None:
    assert list(_sections()) == list(ALL_EVENTS)


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_section_example_validates(event: str) -> None:
    body_text = _sections()[event]
    assert DESCRIPTIONS[event] in body_text
    examples = EXAMPLE.findall(body_text)
    assert len(examples) == 1
    body = json.loads(examples[0])
    assert body["event"] == event
    assert re.fullmatch(r"evt_[0-9A-Z]{26}", body["id"])
    request = {k: body[k] for k in ("event", "pbx_id", "account_id", "data")}
    assert validate_publish_request(request) == request
    if event in CALL_EVENTS:
        assert body["call_id"] == body["data"]["call_id"]
        assert body["sequence"] >= 1
    else:
        assert "call_id" not in body
        assert "sequence" not in body
    for field in body["data"]:
        assert f"`data.{field}`" in body_text, f"{field} missing from the field table"
