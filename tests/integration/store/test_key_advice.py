"""``secretbox.key_advice``: after a copy, the key named is the one that reads the copied
secrets — found by decrypting one, not guessed from the environment the copy ran in."""

from __future__ import annotations

from pathlib import Path

from callhook.settings import Settings
from callhook.store.secretbox import key_advice
from tests import factories

PG = "postgresql://callhook@db.internal/callhook"


def _source(tmp_path: Path, *, master_key: str = "", secrets: bool = True) -> Settings:
    """A SQLite source with an endpoint (so a signing secret) when ``secrets``, its key being
    ``master_key`` or, without one, the key file made beside it."""
    platform = factories.make_platform(tmp_path, master_key=master_key)
    if secrets:
        factories.make_account(platform, url="https://a.example.com/h")
    return platform.settings


def _advice(tmp_path: Path, source: Settings, target: str, *, master_key: str = "") -> str:
    from callhook.store.db import Database

    settings = Settings.from_env(
        {"CALLHOOK_DATABASE_URL": source.database_url, "CALLHOOK_MASTER_KEY": master_key}
    )
    db = Database(source.database_url)
    try:
        return key_advice(settings, db, target)
    finally:
        db.dispose()


def test_the_key_file_that_reads_the_secrets_is_named(tmp_path: Path) -> None:
    source = _source(tmp_path)
    key = tmp_path / "callhook.key"
    assert key.is_file()
    assert f"set CALLHOOK_MASTER_KEY to the contents of {key}" in _advice(tmp_path, source, PG)
    advice = _advice(tmp_path, source, f"sqlite:///{tmp_path / 'new.db'}")
    assert f"copy {key} to {tmp_path / 'new.key'} or set CALLHOOK_MASTER_KEY" in advice
    same = _advice(tmp_path, source, f"sqlite:///{tmp_path / 'callhook.sqlite'}")
    assert "the key file the target uses too" in same


def test_the_environment_key_is_named_only_when_it_reads_them(tmp_path: Path) -> None:
    source = _source(tmp_path, master_key=factories.TEST_MASTER_KEY)
    right = _advice(tmp_path, source, PG, master_key=factories.TEST_MASTER_KEY)
    assert right.startswith("Run the target's processes with this CALLHOOK_MASTER_KEY")
    # The copy run from a shell without the processes' key (and no key file): no wrong guess.
    for key in ("", "c29tZSBvdGhlciBrZXkgb2YgMzIgYnl0ZXMgbG9uZyE"):
        advice = _advice(tmp_path, source, PG, master_key=key)
        assert "the master key the source's processes use" in advice
        assert ".key" not in advice
        assert "this CALLHOOK_MASTER_KEY" not in advice


def test_without_secrets_it_says_what_always_holds(tmp_path: Path) -> None:
    source = _source(tmp_path, secrets=False)
    assert "the master key the source's processes use" in _advice(tmp_path, source, PG)
