"""Apply Alembic migrations programmatically (``callhook migrate``, tests, ``make run``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from callhook.errors import StoreError
from callhook.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock key held while migrating, so processes started together (three API
#: machines running ``serve --migrate``) apply each migration once, one after another.
MIGRATION_LOCK = 0x63616C6C686F6F6B  # "callhook"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    _run(db, lambda config: command.upgrade(config, revision))


def downgrade(db: Database, revision: str) -> None:
    """Take the database schema down to ``revision`` (operators, tests of migrations)."""
    _run(db, lambda config: command.downgrade(config, revision))


def _run(db: Database, step: Callable[[Config], None]) -> None:
    config = alembic_config()
    with db.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw: Any = conn.connection.dbapi_connection
        if sqlite:
            # Rebuilding a table (Alembic's batch mode, SQLite's way to change a column) drops
            # the table other tables' foreign keys name; SQLite allows that only with the
            # checks off, which it lets change outside a transaction only. The whole
            # migration is checked before its commit instead.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                config.attributes["connection"] = conn
                step(config)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise StoreError(f"migration left broken references: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def current(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate_to_head(db: Database) -> tuple[str | None, str | None]:
    """``callhook migrate``: upgrade ``db`` to this code's newest migration; returns the
    revision before and after. ``StoreError`` with the driver's reason when the database cannot
    be reached, and when it is at a revision this code does not know (a newer Callhook's)."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    from callhook.store.db import driver_reason, redacted_url

    where = redacted_url(db.url)
    try:
        before = current(db)
        upgrade(db)
        return before, current(db)
    except DBAPIError as exc:
        raise StoreError(f"cannot migrate the database at {where}: {driver_reason(exc)}") from exc
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate the database at {where}: {exc} (a database migrated by a newer"
            " Callhook needs that version)"
        ) from exc
