"""The demo's setup across runs (``callhook.cli.demo.prepare``): made once, then kept as the user
left it, with exactly one active demo token whatever happened to the state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from callhook.cli.demo import DEMO_ACCOUNT, DEMO_TOKEN_NAME, DemoSetup, prepare
from callhook.core.clock import FakeClock
from callhook.demo import DemoState, load_state, save_state, state_path
from callhook.platform import Platform
from callhook.store import accounts as account_store
from callhook.store import integrations as integration_store
from callhook.store import tokens as token_store
from callhook.store.secretbox import SecretBox
from tests.factories import make_platform

BUILT_IN = "http://127.0.0.1:8001/webhook"


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    # SQLite whatever the run's backend: the demo's state file lives beside the database file.
    url = f"sqlite:///{tmp_path / 'callhook.db'}"
    return make_platform(tmp_path, clock=FakeClock(), database_url=url)


def _active_demo_tokens(platform: Platform, account_id: str) -> list[str]:
    now = platform.clock.now()
    with platform.db.read() as conn:
        return [
            t.id
            for t in token_store.list_for(conn, account_id)
            if t.name == DEMO_TOKEN_NAME and t.active(now)
        ]


def _run(platform: Platform, state: DemoState) -> tuple[DemoSetup, DemoState]:
    """One demo start, and the state it saves (through the real file, as between runs)."""
    setup, kept = prepare(platform, BUILT_IN, state)
    path = state_path(platform.settings.database_url)
    save_state(path, kept)
    return setup, load_state(path)


def test_first_run_creates_later_runs_keep(platform: Platform) -> None:
    first, state = _run(platform, DemoState())
    assert first.created
    assert first.new_token
    assert first.url == BUILT_IN
    # The user changes everything a demo user can change.
    now = platform.clock.now()
    with platform.db.write() as conn:
        integration_store.set_url(
            conn,
            first.account_id,
            "https://localhost:4443/hook",
            now=now,
            box=platform.box,
            rng=platform.rng,
        )
        integration_store.set_subscriptions(conn, first.account_id, ["sms"], now=now)
        integration_store.set_retry_policy(conn, first.account_id, "none", now=now)
        integration_store.set_enabled(conn, first.account_id, False, now=now)
    for _ in range(3):
        again, state = _run(platform, state)
        assert not again.created
        assert not again.new_token
        assert (again.account_id, again.token, again.secret) == (
            first.account_id,
            first.token,
            first.secret,
        )
        assert again.url == "https://localhost:4443/hook"
    with platform.db.read() as conn:
        setting = integration_store.get(conn, first.account_id)
        demo_accounts = [a for a in account_store.list_all(conn) if a.name == DEMO_ACCOUNT]
    assert setting is not None
    assert (setting.subscribed_events, setting.retry_policy, setting.enabled) == (
        ("sms",),
        "none",
        False,
    )
    assert len(demo_accounts) == 1
    assert _active_demo_tokens(platform, first.account_id) == [first.token_id]


def test_a_lost_state_file_replaces_the_token_and_revokes_the_old(platform: Platform) -> None:
    first, _ = _run(platform, DemoState())
    state_path(platform.settings.database_url).unlink()
    second, _ = _run(platform, load_state(state_path(platform.settings.database_url)))
    assert second.new_token
    assert second.token != first.token
    assert _active_demo_tokens(platform, first.account_id) == [second.token_id]


def test_a_revoked_demo_token_is_replaced(platform: Platform) -> None:
    first, state = _run(platform, DemoState())
    with platform.db.write() as conn:
        token_store.revoke(
            conn, first.token_id, now=platform.clock.now(), account_id=first.account_id
        )
    second, _ = _run(platform, state)
    assert second.new_token
    assert second.token != first.token
    assert _active_demo_tokens(platform, first.account_id) == [second.token_id]


def test_tokens_minted_by_older_versions_are_revoked_down_to_one(platform: Platform) -> None:
    first, state = _run(platform, DemoState())
    # What every restart used to do: another never-expiring full-scope demo token.
    with platform.db.write() as conn:
        for _ in range(3):
            token_store.create(
                conn,
                account_id=first.account_id,
                scopes=["events.write", "webhooks.read", "webhooks.write"],
                now=platform.clock.now(),
                rng=platform.rng,
                name=DEMO_TOKEN_NAME,
            )
    again, _ = _run(platform, state)
    assert again.token == first.token
    assert _active_demo_tokens(platform, first.account_id) == [first.token_id]


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"token": "%%%"}', '{"token_id": 5, "token": null}'],
)
def test_an_unreadable_state_file_costs_a_new_token_only(platform: Platform, content: str) -> None:
    first, _ = _run(platform, DemoState())
    path = state_path(platform.settings.database_url)
    path.write_text(content)
    second, _ = _run(platform, load_state(path))
    assert second.account_id == first.account_id
    assert second.secret == first.secret
    assert _active_demo_tokens(platform, first.account_id) == [second.token_id]


def test_a_state_written_under_another_master_key_costs_a_new_token_only(
    platform: Platform,
) -> None:
    first, _ = _run(platform, DemoState())
    foreign = DemoState().with_token(first.token_id, first.token, SecretBox(b"k" * 32))
    second, _ = _run(platform, foreign)
    assert second.new_token
    assert _active_demo_tokens(platform, first.account_id) == [second.token_id]


def test_the_state_file_keeps_no_token_in_plain_text(platform: Platform) -> None:
    setup, _ = _run(platform, DemoState())
    path = state_path(platform.settings.database_url)
    assert path.name == "callhook.demo.json"
    assert setup.token not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_missing_ca_bundle_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callhook.cli.main import app

    env = {
        "CALLHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'callhook.db'}",
        "CALLHOOK_CA_BUNDLE": str(tmp_path / "no-such-ca.pem"),
    }
    result = CliRunner().invoke(app, ["demo", "--no-traffic"], env=env)
    assert result.exit_code == 2
    assert "no-such-ca.pem (CALLHOOK_CA_BUNDLE) is not a file" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []
