"""The root Typer app. Sub-apps are registered at the bottom of this module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="callhook",
    help="Callhook: telephony events delivered as signed HTTPS webhooks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def main() -> None:
    """Console-script entry point."""
    _register()
    app()


def _register() -> None:
    # Imported here, not at module level, so that `callhook --help` stays fast and a broken
    # optional part cannot stop the rest of the CLI from loading.
    pass
