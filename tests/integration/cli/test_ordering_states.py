"""Deliveries waiting behind an earlier event of their call, and expired ones (issue 14), as the
CLI shows and filters them (table and --json) on a real SQLite file."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.core.clock import FakeClock
from callhook.core.outcome import ErrorClass
from callhook.events import call_scenario
from callhook.publish import PublishRequest
from callhook.store import deliveries as delivery_store
from tests.factories import attempt_due, make_account, make_platform

runner = CliRunner()


def _cli(db: Path, *args: str) -> str:
    env = {"CALLHOOK_DATABASE_URL": f"sqlite:///{db}", "CALLHOOK_LOG_LEVEL": "WARNING"}
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_waiting_and_expired_are_listed_and_filtered(tmp_path: Path) -> None:
    platform = make_platform(tmp_path, clock=FakeClock())
    account = make_account(platform, url="https://receiver.example/hook")
    call = call_scenario("answered", random.Random(4), start=platform.clock.now())
    for item in call[:3]:
        platform.publisher.publish([PublishRequest(item.event, item.pbx_id, account.id, item.data)])
    [head] = attempt_due(platform, status=None, error_class=ErrorClass.EXPIRED)
    db = Path(platform.settings.database_url.removeprefix("sqlite:///"))
    statuses: dict[str, Any] = {
        s: orjson.loads(_cli(db, "deliveries", "list", "--status", s, "--json"))
        for s in ("expired", "pending", "waiting")
    }
    assert [d["id"] for d in statuses["expired"]] == [head.delivery_id]
    assert len(statuses["pending"]) == 1  # the next event took the line
    assert len(statuses["waiting"]) == 1
    table = _cli(db, "deliveries", "list")
    assert "expired" in table
    assert "waiting" in table
    # The dashboard's and the API's filters offer the same statuses.
    assert set(delivery_store.STATUSES) >= {"waiting", "expired"}


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "CALLHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "CALLHOOK_ALLOW_UNSAFE_TARGETS": "1",
        "CALLHOOK_LOG_LEVEL": "WARNING",
    }


def _run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_endpoint_ordering_fields_from_the_cli(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _run(env, "migrate")
    acc = orjson.loads(_run(env, "accounts", "create", "Acme", "--json"))["id"]
    added = orjson.loads(
        _run(
            env,
            "endpoints",
            "add",
            acc,
            "https://127.0.0.1:9443/crm",
            "--events",
            "sms",
            "--ordering",
            "none",
            "--max-age-call-control",
            "120",
            "--json",
        )
    )
    assert (added["ordering"], added["ordering_bound_seconds"]) == ("none", 300)
    assert (added["max_age_call_control_seconds"], added["max_age_bulk_seconds"]) == (120, None)
    changed = orjson.loads(
        _run(
            env,
            "endpoints",
            "update",
            acc,
            added["id"],
            "--ordering",
            "per_call",
            "--ordering-bound",
            "60",
            "--max-age-call-control",
            "none",
            "--json",
        )
    )
    assert (changed["ordering"], changed["ordering_bound_seconds"]) == ("per_call", 60)
    assert changed["max_age_call_control_seconds"] is None
    assert "Ordering:    per_call, bound 60 s" in _run(env, "endpoints", "show", acc, added["id"])


def test_bad_ordering_fields_from_the_cli_name_the_field_and_change_nothing(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    _run(env, "migrate")
    acc = orjson.loads(_run(env, "accounts", "create", "Acme", "--json"))["id"]
    before = _run(env, "endpoints", "list", acc, "--json")
    primary = orjson.loads(before)[0]["id"]
    for option, value, field in (
        ("--ordering", "fifo", "ordering"),
        ("--ordering-bound", "-5", "ordering_bound_seconds"),
        ("--ordering-bound", "ten", "ordering_bound_seconds"),
        ("--max-age-bulk", "0", "max_age_bulk_seconds"),
    ):
        result = runner.invoke(
            app,
            ["endpoints", "update", acc, primary, "--description", "x", option, value],
            env=env,
        )
        assert result.exit_code == 1, result.output
        assert field in result.output
        if value.lstrip("-").isdigit():  # a number out of range is told its range
            assert "between 1 and 86400" in result.output
    assert _run(env, "endpoints", "list", acc, "--json") == before
    # "null", as the error for a bad maximum age says, is accepted like "none".
    changed = orjson.loads(
        _run(env, "endpoints", "update", acc, primary, "--max-age-bulk", "null", "--json")
    )
    assert changed["max_age_bulk_seconds"] is None
