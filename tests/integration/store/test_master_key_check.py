"""A master key that cannot serve the database is refused before anything uses it
(``secretbox.load_secret_box`` with the database): one that decrypts none of the newest signing
secrets, and a missing key file beside a SQLite database that holds secrets (never replaced by a
new one). ``serve`` and ``worker`` say so in one line, before their banner."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.errors import ConfigurationError
from callhook.settings import Settings
from callhook.store.secretbox import (
    KEY_CHECK_SAMPLE,
    SecretBox,
    decode_master_key,
    load_secret_box,
    new_master_key,
)
from callhook.store.tables import endpoint_secrets
from tests import factories

OTHER_KEY = new_master_key()


def _with_secrets(tmp_path: Path, *, master_key: str = "") -> Settings:
    platform = factories.make_platform(tmp_path, master_key=master_key)
    factories.make_account(platform, url="https://a.example.com/h", name="One")
    factories.make_account(platform, url="https://b.example.com/h", name="Two")
    return platform.settings


def _load(settings: Settings, *, master_key: str | None = None) -> SecretBox:
    from callhook.store.db import Database

    db = Database(settings.database_url)
    try:
        keyed = settings if master_key is None else replace(settings, master_key=master_key)
        return load_secret_box(keyed, db)
    finally:
        db.dispose()


def test_a_key_that_reads_none_of_the_secrets_is_refused(tmp_path: Path) -> None:
    settings = _with_secrets(tmp_path, master_key=factories.TEST_MASTER_KEY)
    with pytest.raises(ConfigurationError, match="CALLHOOK_MASTER_KEY does not decrypt"):
        _load(settings, master_key=OTHER_KEY)
    _load(settings, master_key=factories.TEST_MASTER_KEY)  # the right one passes


def test_a_missing_key_file_is_not_replaced_when_secrets_exist(tmp_path: Path) -> None:
    settings = _with_secrets(tmp_path)
    key = tmp_path / "callhook.key"
    right = key.read_text()
    key.unlink()
    with pytest.raises(ConfigurationError, match=f"no key file at {key} for a database"):
        _load(settings)
    assert not key.exists()
    key.write_text(OTHER_KEY)  # the wrong one, where the right one belongs
    with pytest.raises(ConfigurationError, match=f"the key in {key} does not decrypt"):
        _load(settings)
    key.write_text(right)
    _load(settings)


def test_one_secret_under_another_key_does_not_refuse_the_rest(tmp_path: Path) -> None:
    platform = factories.make_platform(tmp_path)
    factories.make_account(platform, url="https://a.example.com/h")
    odd = factories.make_account(platform, url="https://b.example.com/h", name="Two")
    with platform.db.write() as conn:
        conn.execute(
            update(endpoint_secrets)
            .where(endpoint_secrets.c.endpoint_id == _endpoint_of(platform, odd.id))
            .values(secret_encrypted=SecretBox(decode_master_key(OTHER_KEY)).encrypt("whsec_x"))
        )
    _load(platform.settings)


def test_a_database_without_tables_passes(tmp_path: Path) -> None:
    from callhook.store.db import Database

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    db = Database(url)
    try:
        load_secret_box(Settings(database_url=url, master_key=OTHER_KEY), db)
    finally:
        db.dispose()


@pytest.mark.parametrize("command", [["worker"], ["serve", "--no-migrate"]])
def test_serve_and_worker_refuse_a_wrong_key_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    settings = _with_secrets(tmp_path, master_key=factories.TEST_MASTER_KEY)
    env = {"CALLHOOK_DATABASE_URL": settings.database_url, "CALLHOOK_MASTER_KEY": OTHER_KEY}
    # serve and worker route callhook's logs to the stderr they had (CliRunner's, closed once it
    # returns): put back what the other tests log through.
    logger = logging.getLogger("callhook")
    kept = logger.handlers[:], logger.level, logger.propagate
    try:
        result = CliRunner().invoke(app, command, env=env)
    finally:
        logger.handlers[:], logger.level, logger.propagate = kept
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not a traceback
    out = " ".join(result.output.split())
    assert "error: CALLHOOK_MASTER_KEY does not decrypt this database's signing secrets" in out
    assert "Callhook API" not in out
    assert "worker" not in out.split("error:")[0].lower()  # no banner before it


def _endpoint_of(platform: object, account_id: str) -> str:
    from sqlalchemy import select

    from callhook.platform import Platform
    from callhook.store.tables import endpoints

    assert isinstance(platform, Platform)
    with platform.db.read() as conn:
        return str(
            conn.execute(
                select(endpoints.c.id).where(endpoints.c.account_id == account_id)
            ).scalar_one()
        )


def test_the_oldest_secrets_are_sampled_too(tmp_path: Path) -> None:
    """A process with a stray key wrote the newest secrets: the key of everything older still
    passes (its oldest are sampled), so the fleet is not refused its own key."""
    platform = factories.make_platform(tmp_path, master_key=factories.TEST_MASTER_KEY)
    for n in range(2 * KEY_CHECK_SAMPLE + 3):
        factories.make_account(platform, url=f"https://{n}.example.com/h", name=f"A{n}")
    stray = SecretBox(decode_master_key(OTHER_KEY))
    with platform.db.write() as conn:
        newest = conn.execute(
            select(endpoint_secrets.c.id)
            .order_by(endpoint_secrets.c.id.desc())
            .limit(2 * KEY_CHECK_SAMPLE + 1)
        ).scalars()
        for secret_id in list(newest):
            conn.execute(
                update(endpoint_secrets)
                .where(endpoint_secrets.c.id == secret_id)
                .values(secret_encrypted=stray.encrypt("whsec_x"))
            )
    _load(platform.settings, master_key=factories.TEST_MASTER_KEY)
