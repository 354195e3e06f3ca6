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
        problem = not_set_up(settings.database_url)
        if problem is None:
            built = Platform.create(settings)
            problem = not_set_up(settings.database_url, built.db)
        if problem is not None:
            raise fail(problem, code=1)
        assert built is not None
        yield built
    except CallhookError as exc:
        raise fail(exc.message, code=1) from exc
    finally:
        if built is not None:
            built.db.dispose()


def not_set_up(database_url: str, db: Database | None = None) -> str | None:
    """Why a command cannot work on this database yet, or None: a SQLite file that does not
    exist (checked before anything creates it, an empty database or a key file, in whatever
    directory the command ran from), or, given ``db``, a database ``callhook migrate`` has not
    run on (which otherwise ended in a traceback: "no such table")."""
    from callhook.store.db import sqlite_file

    where = display_url(database_url)
    hint = "or point --database-url or CALLHOOK_DATABASE_URL at the one you set up"
    path = sqlite_file(database_url)
    if db is None and path is not None and not path.exists():
        return f"no database at {where}: run `callhook migrate` to create it ({hint})"
    if db is not None and not db.has_schema():
        return f"the database at {where} has no Callhook tables: run `callhook migrate` ({hint})"
    return None


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
        raise fail(f"{name} {exc}, not {value!r}") from exc


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()
