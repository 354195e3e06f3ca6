"""``callhook copy-database``: every row from SQLite to PostgreSQL (and back), each value in the
target's own forms, so everything reads the same there and writing goes on; refusals leave the
target untouched."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from callhook.cli.main import app
from callhook.core.clock import FakeClock
from callhook.errors import InvalidRequest, StoreError
from callhook.platform import Platform
from callhook.store import deliveries as delivery_store
from callhook.store.copy import copy_database
from callhook.store.migrate import downgrade
from callhook.store.tables import deliveries, metadata
from tests import factories
from tests.integration.store.test_migration_compact import T0


def _platform(tmp_path: Path, backend: str) -> Platform:
    """A migrated platform; all of them with one master key, as the copy's target needs."""
    with factories.use_backend(backend):
        return factories.make_platform(
            tmp_path / backend, clock=FakeClock(T0), master_key=factories.TEST_MASTER_KEY
        )


def _attempt(platform: Platform, *, ok: bool) -> None:
    """A second later, every due delivery delivered, or answered 503 and due again at once."""
    assert isinstance(platform.clock, FakeClock)
    platform.clock.advance(1)
    factories.attempt_due(
        platform,
        status=200 if ok else 503,
        retry_in=timedelta(0),
        duration_ms=12.5,
        response_body=lambda _: "fine" if ok else "busy",
    )


def _with_history(platform: Platform) -> list[str]:
    """Accounts, a user, a token, call events delivered at their second attempt, one pending:
    the delivery ids."""
    account = factories.make_account(platform, url="https://a.example.com/h")
    factories.make_user(platform, account.id, "ops@example.com")
    factories.make_token(platform, account.id, ["events.write"])
    factories.make_account(platform, name="Quiet")
    ids = []
    for n, event in enumerate(["incoming_call_start", "incoming_call_answer", "sms"]):
        published = factories.publish_sample(platform, account.id, event, seed=n)
        assert published.delivery_id is not None
        ids.append(published.delivery_id)
    _attempt(platform, ok=False)
    _attempt(platform, ok=True)
    later = factories.publish_sample(platform, account.id, "sms", seed=9)
    assert later.delivery_id is not None
    return [*ids, later.delivery_id]


def _counts(platform: Platform) -> dict[str, int]:
    with platform.db.read() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in metadata.sorted_tables
        }


def _details(platform: Platform, ids: list[str]) -> list[delivery_store.Delivery]:
    with platform.db.read() as conn:
        return [delivery_store.get(conn, i) for i in ids]


def test_sqlite_to_postgresql_and_back_reads_the_same_and_goes_on(tmp_path: Path) -> None:
    sqlite_side = _platform(tmp_path, "sqlite")
    ids = _with_history(sqlite_side)
    postgres = _platform(tmp_path, "postgresql")
    env = {
        "CALLHOOK_DATABASE_URL": sqlite_side.settings.database_url,
        "CALLHOOK_MASTER_KEY": factories.TEST_MASTER_KEY,
    }
    result = CliRunner().invoke(
        app, ["copy-database", "--to", postgres.settings.database_url], env=env
    )
    assert result.exit_code == 0, result.output
    assert "deliveries: 4 rows" in result.output
    assert "Copied " in result.output
    # Which key the target needs: the one that reads the copied secrets (test_key_advice).
    assert "with this CALLHOOK_MASTER_KEY" in " ".join(result.output.split())

    assert _counts(postgres) == _counts(sqlite_side)
    assert _counts(postgres)["attempts"] == 3  # the first attempts; the second are on the rows
    assert _details(postgres, ids) == _details(sqlite_side, ids)

    # Writing goes on there: a retry moves an attempt into ``attempts`` (its sequence was
    # moved past the copied ids), the pending delivery goes out.
    assert isinstance(postgres.clock, FakeClock)
    postgres.clock.set(sqlite_side.clock.now())
    with postgres.db.write() as conn:
        delivery_store.redeliver(conn, ids[0], now=postgres.clock.now())
    _attempt(postgres, ok=True)
    with postgres.db.read() as conn:
        statuses = {r.status for r in conn.execute(select(deliveries.c.status))}
    assert statuses == {"delivered"}
    assert [a.number for a in _details(postgres, ids[:1])[0].attempt_log] == [1, 2, 3]

    # And back into a fresh SQLite file: the same again.
    back = _platform(tmp_path / "back", "sqlite")
    copy_database(postgres.db, back.db)
    assert _counts(back) == _counts(postgres)
    assert _details(back, ids) == _details(postgres, ids)


def test_a_target_with_any_row_or_a_database_at_another_revision_is_refused(
    tmp_path: Path,
) -> None:
    source = _platform(tmp_path, "sqlite")
    _with_history(source)
    target = _platform(tmp_path, "postgresql")
    factories.make_token(target, None, ["events.write"])  # a platform token: no account
    before = _counts(target)
    with pytest.raises(InvalidRequest, match=r"not empty \(rows in api_tokens\)"):
        copy_database(source.db, target.db)
    assert _counts(target) == before

    empty = _platform(tmp_path / "old", "postgresql")
    downgrade(empty.db, "0009_binary_ids")
    with pytest.raises(InvalidRequest, match="target database is at schema revision 0009"):
        copy_database(source.db, empty.db)


def test_a_row_the_target_refuses_leaves_nothing_copied(tmp_path: Path) -> None:
    # SQLite keeps a value longer than its column's declared length; PostgreSQL refuses it.
    source = _platform(tmp_path, "sqlite")
    ids = _with_history(source)
    with source.db.write() as conn:
        conn.execute(
            deliveries.update().where(deliveries.c.id == ids[-1]).values(claimed_by="w" * 150)
        )
    target = _platform(tmp_path, "postgresql")
    with pytest.raises(
        StoreError, match="copying deliveries failed, nothing was copied: value too"
    ):
        copy_database(source.db, target.db)
    assert set(_counts(target).values()) == {0}  # accounts, events … rolled back with it


def test_a_broken_reference_names_the_likely_cause(tmp_path: Path) -> None:
    # What a source still written to gives (a delivery whose event came after the events table
    # was read), made here by a delivery pointing at an event that is not there.
    source = _platform(tmp_path, "sqlite")
    _with_history(source)
    with sqlite3.connect(tmp_path / "sqlite" / "callhook.db") as raw:  # foreign keys off
        raw.execute("UPDATE deliveries SET event_id = zeroblob(16) WHERE rowid = 1")
    target = _platform(tmp_path, "postgresql")
    with pytest.raises(StoreError, match="if a Callhook process still writes to the source"):
        copy_database(source.db, target.db)
    assert set(_counts(target).values()) == {0}


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    # An exception the command let escape would be a traceback for a person.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_the_command_says_which_database_is_wrong_and_why(tmp_path: Path) -> None:
    source = _platform(tmp_path, "sqlite")
    env = {"CALLHOOK_DATABASE_URL": source.settings.database_url}
    cases = {
        "postgresql://postgres@127.0.0.1:1/test": "cannot reach the target database at",
        "postgresql://postgres@127.0.0.1:notaport/test": "--to: invalid database URL",
        f"sqlite:///{tmp_path / 'nowhere.db'}": "no database at sqlite:///",
        "mysql://x@localhost/db": "--to: unsupported database 'mysql'",
        "postgresql+psycopg2://x@localhost/db": "--to: unsupported PostgreSQL driver 'psycopg2'",
    }
    for url, message in cases.items():
        code, out = _cli(env, "copy-database", "--to", url)
        assert (code, message in " ".join(out.split())) == (1, True), (url, out)
    assert not (tmp_path / "nowhere.db").exists()
    code, out = _cli(env, "copy-database", "--to", source.settings.database_url)
    assert code == 2
    assert "--to names the database being copied" in out


def test_migrate_on_a_database_it_cannot_reach_says_so(tmp_path: Path) -> None:
    for url, message in {
        "postgresql://postgres@127.0.0.1:1/test": "cannot migrate the database at",
        "postgresql://postgres@127.0.0.1:notaport/test": "invalid database URL",
    }.items():
        code, out = _cli({"CALLHOOK_DATABASE_URL": url}, "migrate")
        assert (code, message in " ".join(out.split())) == (1, True), (url, out)
