"""What every command shares: building the platform from the environment, and output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from callhook.core import times
from callhook.core.clock import rfc3339
from callhook.errors import CallhookError
from callhook.platform import Platform
from callhook.settings import Settings

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print JSON instead of text for people.")
DatabaseOption = typer.Option(
    None, "--database-url", help="Database URL (default: $CALLHOOK_DATABASE_URL or ./callhook.db)."
)


def settings_from_env(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def platform(database_url: str | None = None) -> Iterator[Platform]:
    """A platform for one command; CallhookErrors become a clear message and exit code 1."""
    settings = settings_from_env(database_url=database_url)
    built: Platform | None = None
    try:
        built = Platform.create(settings)
        yield built
    except CallhookError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        if built is not None:
            built.db.dispose()


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def print_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2).decode())


def when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time given on the command line (one without a time zone is UTC), in the
    accepted range of ``core.times``; otherwise a clear message and exit code 2."""
    if value is None:
        return None
    try:
        return times.parse_rfc3339(value, local_is_utc=True)
    except times.TimeInvalid as exc:
        err_console.print(f"[red]error:[/red] {escape(f'{name} {exc}, not {value!r}')}")
        raise typer.Exit(2) from exc
