"""``callhook copy-database --to URL``: move every row to another database (SQLite to
PostgreSQL when one machine is not enough; docs/deployment.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from callhook.cli.common import (
    DatabaseOption,
    console,
    display_url,
    fail,
    set_up_database,
    settings_from_env,
)


def copy_database(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The database to copy into: migrated (`callhook migrate`) and empty.",
            show_default=False,
        ),
    ],
    database_url: str | None = DatabaseOption,
) -> None:
    """Copy every row to another database (SQLite to PostgreSQL).

    Values are converted to the target's forms on the way (times, ids), which a generic copy
    tool does not do. Stop every Callhook process using the source first; run `callhook
    migrate` on the target with this version first. The target's processes need the same
    master key (CALLHOOK_MASTER_KEY, or the key file beside a SQLite database).
    """
    from callhook.errors import CallhookError, StoreUnavailable
    from callhook.store.copy import copy_database as copy_rows
    from callhook.store.db import Database, missing_sqlite_file
    from callhook.store.secretbox import key_advice

    settings = settings_from_env(database_url=database_url)
    if to == settings.database_url:
        raise fail("--to names the database being copied: give another one", code=2)
    source = set_up_database(settings.database_url)
    try:
        if missing_sqlite_file(to) is not None:
            raise fail(
                f"no database at {display_url(to)}: create it with `callhook migrate"
                " --database-url URL` first",
                code=1,
            )
        try:
            target = Database(to)
        except CallhookError as exc:
            raise fail(f"--to: {exc.message}", code=1) from exc
        try:
            copied = copy_rows(
                source,
                target,
                progress=lambda table, rows: console.print(
                    f"  {table}: {rows:,} {'row' if rows == 1 else 'rows'}"
                ),
            )
        except StoreUnavailable as exc:
            raise fail(
                f"a database stopped answering, nothing was copied: {exc.message}", code=1
            ) from exc
        except CallhookError as exc:
            raise fail(exc.message, code=1) from exc
        finally:
            target.dispose()
        advice = key_advice(settings, source, to)
    finally:
        source.dispose()
    console.print(
        f"Copied {sum(copied.rows.values()):,} rows from {display_url(settings.database_url)}"
        f" to {display_url(to)}."
    )
    console.print(advice)


def register(app: typer.Typer) -> None:
    """``callhook copy-database``."""
    app.command("copy-database")(copy_database)
