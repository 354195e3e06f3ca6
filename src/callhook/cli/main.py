"""The root Typer app; each noun's module contributes its commands in ``_register``.

Every command module imports only the standard library and Typer at the top (the rest where it
is used), so ``callhook --help`` answers in about a tenth of a second instead of a second:
``python -m bench.cli_startup`` measures it.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="callhook",
    help="Callhook: telephony events delivered as signed HTTPS webhooks.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    # Plain help: Rich's costs ~0.15 s to import and prints `<bool>` after every flag.
    rich_markup_mode=None,
)


def main() -> None:
    """Console-script entry point."""
    app()


def _register() -> None:
    from callhook.cli import (
        admin,
        copy,
        deliveries,
        demo,
        devtools,
        endpoints,
        events,
        processes,
        prune,
        simulate,
    )

    app.command()(processes.serve)
    app.command()(processes.worker)
    app.command()(processes.migrate)
    app.command()(deliveries.emit)
    app.command()(demo.demo)
    app.command()(simulate.simulate)
    app.add_typer(admin.accounts_app)
    app.add_typer(admin.tokens_app)
    app.add_typer(admin.integration_app)
    app.add_typer(endpoints.app)
    app.add_typer(admin.keys_app)
    app.add_typer(deliveries.deliveries_app)
    app.add_typer(events.app, name="events")
    devtools.register(app)
    prune.register(app)
    copy.register(app)


_register()
