"""``callhook events`` through Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from callhook.cli.events import app
from callhook.events import ALL_EVENTS, validate_publish_request

runner = CliRunner()


def test_schema_prints_json() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document["events"]) == list(ALL_EVENTS)


@pytest.mark.parametrize("event", ["incoming_call_start", "sms", "test", "tags"])
def test_sample_prints_a_valid_publish_request(event: str) -> None:
    result = runner.invoke(app, ["sample", event, "--seed", "7", "--account", "acc_42"])
    assert result.exit_code == 0, result.output
    request = json.loads(result.stdout)
    assert request["event"] == event
    assert request["account_id"] == "acc_42"
    assert validate_publish_request(request) == request


def test_sample_with_seed_and_time_is_reproducible() -> None:
    args = ["sample", "incoming_call_end", "--seed", "3", "--at", "2026-01-15T10:30:00Z"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout == runner.invoke(app, args).stdout
    assert json.loads(first.stdout)["data"]["ended_at"] == "2026-01-15T10:30:00.000Z"


def test_unseeded_sample_is_valid() -> None:
    result = runner.invoke(app, ["sample", "incoming_call_start"])
    assert result.exit_code == 0, result.output
    validate_publish_request(json.loads(result.stdout))


def test_unknown_event_fails_clearly() -> None:
    result = runner.invoke(app, ["sample", "call.started"])
    assert result.exit_code == 2
    assert "unknown event 'call.started'" in result.stderr
    assert "incoming_call_start" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("at", ["yesterday", "2026-01-15T10:30:00"])
def test_bad_time_fails_clearly(at: str) -> None:
    result = runner.invoke(app, ["sample", "test", "--at", at])
    assert result.exit_code == 2
    assert "--at" in result.stderr


def test_list_shows_every_event() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(ALL_EVENTS)
