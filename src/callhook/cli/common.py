"""What every command shares: building the platform from the environment, and output.

Import cost matters here: ``callhook --help`` imports every command module, so this module and
they import only the standard library and Typer at the top. Everything heavier (the platform,
SQLAlchemy, pydantic, aiohttp, even Rich) is imported inside the function that uses it
(measured by ``python -m bench.cli_startup``).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from callhook.platform import Platform
    from callhook.settings import Settings
    from callhook.store.db import Database


class LazyModule:
    """A module imported on first attribute access. Used as::

        if TYPE_CHECKING:
            from callhook.store import tokens as token_store
        else:
            token_store = LazyModule("callhook.store.tokens")

    so that call sites read (and type-check) as if the module were imported at the top.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


#: Console width when the output is not a terminal (a pipe, a file, ``$(…)``): nothing to fit,
#: so values (ids, tokens, URLs) are printed whole instead of cut or wrapped at 80 columns.
UNBOUNDED_WIDTH = 100_000


def make_console(*, stderr: bool = False, **options: Any) -> Console:
    """A Rich console for people: the terminal's width, or unbounded when not a terminal
    (``COLUMNS`` still wins when set)."""
    from rich.console import Console

    console = Console(stderr=stderr, **options)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = UNBOUNDED_WIDTH
    return console


class _LazyConsole:
    """Stands in for a :class:`rich.console.Console` and makes it on first use."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    # Dunder methods are looked up on the type, past ``__getattr__``: rich's live displays
    # (``Progress``, used by ``callhook simulate``) enter the console as a context manager.
    def __enter__(self) -> Console:
        return self._real().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._real().__exit__(*exc)

    def _real(self) -> Console:
        if self._console is None:
            self._console = make_console(stderr=self._stderr)
        return self._console


console = cast("Console", _LazyConsole(stderr=False))
err_console = cast("Console", _LazyConsole(stderr=True))


def command_group(name: str, help: str) -> typer.Typer:
    """A ``callhook NOUN …`` group. Help is plain text: Typer's Rich help costs ~0.15 s to
    import and shows ``<bool>`` after every flag."""
    return typer.Typer(
        name=name, help=help, no_args_is_help=True, rich_markup_mode=None, add_completion=False
    )


JsonOption = typer.Option(False, "--json", help="Print JSON instead of text for people.")
DatabaseOption = typer.Option(
    None, "--database-url", help="Database URL (default: $CALLHOOK_DATABASE_URL or ./callhook.db)."
)


def settings_from_env(**overrides: Any) -> Settings:
    from callhook.alerts.config import alert_config
    from callhook.errors import ConfigurationError
    from callhook.settings import Settings

    try:
        settings = Settings.from_env(**overrides)
        alert_config(settings)  # a bad alert setting is a usage error, before anything starts
    except ValueError as exc:
        raise fail(str(exc), code=2) from exc
    except ConfigurationError as exc:
        raise fail(exc.message, code=2) from exc
    return settings


def fail(message: str, *, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; return the ``typer.Exit`` to raise (code 2 for a
    usage mistake, 1 for a refusal by Callhook)."""
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def platform(database_url: str | None = None) -> Iterator[Platform]:
    """A platform for one command; CallhookErrors become a clear message and exit code 1."""
    from callhook.errors import CallhookError
    from callhook.platform import Platform

    settings = settings_from_env(database_url=database_url)
    built: Platform | None = None
    try:
        built = Platform.create(settings, db=set_up_database(settings.database_url))
        yield built
    except CallhookError as exc:
        raise fail(exc.message, code=1) from exc
    finally:
        if built is not None:
            built.db.dispose()


def set_up_database(database_url: str) -> Database:
    """The database, open, unless a command cannot work on it yet: ``fail`` (exit 1) for a
    SQLite file that does not exist (checked before anything creates it, an empty database or
    a key file, in whatever directory the command ran from), a database ``callhook migrate``
    has not run on (which otherwise ended in a "no such table" traceback, or a worker logging
    one every second) or one at another migration than this code's (``SCHEMA_REVISION``);
    also (exit 1) a URL that does not parse. A database that cannot be reached now is returned
    as it is: the command meets the outage as it always did (a worker retries, ``/readyz``
    says 503)."""
    from callhook.errors import ConfigurationError, StoreUnavailable
    from callhook.store.db import SCHEMA_REVISION, Database, missing_sqlite_file

    where = display_url(database_url)
    hint = "or point --database-url or CALLHOOK_DATABASE_URL at the one you set up"
    if missing_sqlite_file(database_url) is not None:
        raise fail(f"no database at {where}: run `callhook migrate` to create it ({hint})", code=1)
    try:
        db = Database(database_url)
    except ConfigurationError as exc:
        raise fail(exc.message, code=1) from exc
    try:
        revision = db.schema_revision()
    except StoreUnavailable:
        return db
    if revision is None:
        db.dispose()
        raise fail(
            f"the database at {where} has no Callhook tables: run `callhook migrate` ({hint})",
            code=1,
        )
    if revision != SCHEMA_REVISION:
        db.dispose()
        raise fail(
            f"the database at {where} is at schema revision {revision}, this Callhook needs"
            f" {SCHEMA_REVISION}: stop every Callhook process, run `callhook migrate` with this"
            ' version, then start them again (docs/deployment.md, "Upgrading"; a database'
            " migrated by a newer Callhook needs that version)",
            code=1,
        )
    return db


def require_master_key(settings: Settings, db: Database) -> None:
    """``fail`` (exit 1) unless the master key can serve ``db`` (``load_secret_box``): checked
    by ``serve`` and ``worker`` before their banner and before any child process starts (a
    supervisor would restart children that refuse, one a second, for ever)."""
    from callhook.errors import ConfigurationError
    from callhook.store.secretbox import load_secret_box

    try:
        load_secret_box(settings, db)
    except ConfigurationError as exc:
        db.dispose()
        raise fail(exc.message, code=1) from exc


def display_url(database_url: str) -> str:
    """The database URL to show people: any password replaced by ``***``."""
    from callhook.store.db import redacted_url

    return redacted_url(database_url)


def _default(value: object) -> object:
    from callhook.core.clock import rfc3339

    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def print_json(data: Any) -> None:
    """``data`` as indented JSON. Times are RFC 3339 UTC with milliseconds and a ``Z``
    (``2025-01-15T10:30:00.000Z``), as in the API's ``data``."""
    import orjson

    # orjson writes datetimes itself (``+00:00``, microseconds) unless told to pass them on.
    option = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATETIME
    typer.echo(orjson.dumps(data, default=_default, option=option).decode())


def when(value: datetime | None) -> str:
    """A time for a table: UTC, to the second (``—`` for none)."""
    from datetime import UTC

    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time given on the command line (one without a time zone is UTC), in the
    accepted range of ``core.times``; otherwise a clear message and exit code 2."""
    if value is None:
        return None
    from callhook.core import times

    try:
        return times.parse_rfc3339(value, local_is_utc=True)
    except times.TimeInvalid as exc:
        raise fail(f"{name} {exc} (given: {value!r})") from exc


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()
