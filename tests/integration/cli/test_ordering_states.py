"""Deliveries waiting behind an earlier event of their call, and expired ones (issue 14), as the
CLI shows and filters them (table and --json) on a real SQLite file."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.core.clock import FakeClock
from callhook.events import call_scenario
from callhook.publish import PublishRequest
from callhook.store import deliveries as delivery_store
from callhook.store import queue
from callhook.store.queue import AttemptResult
from tests.factories import make_account, make_platform

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
    now = platform.clock.now()
    with platform.db.write() as conn:
        [head] = queue.claim(
            conn,
            worker_id="w",
            claim_id="clm_1",
            now=now,
            lease=timedelta(seconds=30),
            limit=10,
            box=platform.box,
        )
        queue.complete(
            conn,
            [
                AttemptResult(
                    job=head,
                    started_at=now,
                    duration_ms=0.0,
                    delivered=False,
                    status_code=None,
                    response_body=None,
                    error_class="expired",
                    error_message="not sent",
                    next_attempt_at=None,
                )
            ],
        )
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
