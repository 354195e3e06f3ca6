"""``callhook deliveries redeliver``: a window takes the finished status asked for (failed by
default, delivered, expired), on SQLite and PostgreSQL; one delivery still pending or waiting
is left as it is and said to be."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.core.outcome import ErrorClass
from callhook.platform import Platform
from tests.factories import (
    BACKENDS,
    attempt_due,
    make_account,
    make_platform,
    publish_sample,
    use_backend,
)

runner = CliRunner()


@pytest.fixture(params=BACKENDS)
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    with use_backend(request.param):
        yield make_platform(tmp_path)


def _run(platform: Platform, *args: str) -> str:
    env = {"CALLHOOK_DATABASE_URL": platform.settings.database_url, "CALLHOOK_LOG_LEVEL": "WARNING"}
    if platform.settings.master_key is not None:
        env["CALLHOOK_MASTER_KEY"] = platform.settings.master_key
    result = runner.invoke(app, ["deliveries", "redeliver", *args], env=env)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _statuses(platform: Platform) -> list[str]:
    with platform.db.read() as conn:
        return sorted(
            str(s) for s in conn.exec_driver_sql("SELECT status FROM deliveries").scalars()
        )


def test_a_window_takes_the_status_asked_for(platform: Platform) -> None:
    account = make_account(platform, url="https://receiver.example/hook")
    for seed in range(2):
        publish_sample(platform, account.id, "sms", seed=seed)
    attempt_due(platform, status=None, error_class=ErrorClass.EXPIRED, retry_in=None)
    window = ["--since", "2000-01-01T00:00:00Z"]
    assert orjson.loads(_run(platform, *window, "--json")) == {"queued": 0}  # failed: none
    assert _run(platform, *window, "--status", "delivered") == "Queued 0 delivered deliveries again"
    assert _statuses(platform) == ["expired", "expired"]
    assert _run(platform, *window, "--status", "expired") == "Queued 2 expired deliveries again"
    assert set(_statuses(platform)) <= {"pending", "waiting"}


def test_one_unfinished_delivery_is_left_as_it_is(platform: Platform) -> None:
    account = make_account(platform, url="https://receiver.example/hook")
    pending = publish_sample(platform, account.id, "sms").delivery_id
    assert pending is not None
    assert orjson.loads(_run(platform, pending, "--json")) == {"queued": 0}
    said = _run(platform, pending)
    assert said == f"{pending} is pending, not finished: left as it is (it will be attempted)"
    attempt_due(platform, status=500, retry_in=None)
    assert _statuses(platform) == ["failed"]
    assert orjson.loads(_run(platform, pending, "--json")) == {"queued": 1}
    assert _statuses(platform) == ["pending"]
