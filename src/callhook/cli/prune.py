"""``callhook prune``: apply the retention policy now (workers also do it every few minutes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from callhook.cli.common import (
    DatabaseOption,
    JsonOption,
    console,
    print_json,
    set_up_database,
    settings_from_env,
)


def prune(
    older_than_days: Annotated[
        float | None,
        typer.Option(
            "--older-than-days",
            min=0.0,
            help="Prune what was delivered this many days ago or earlier "
            "(default: $CALLHOOK_RETENTION_DAYS, 30).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Rows per transaction (default 500)."),
    ] = None,
    as_json: bool = JsonOption,
    database_url: str | None = DatabaseOption,
) -> None:
    """Delete history past retention.

    Delivered and failed deliveries, their attempts and unreferenced events older than the
    retention age (and expired sessions, old failed sign-ins), in small batches that do not
    hold up delivery.
    """
    from callhook.core.clock import SystemClock
    from callhook.store.prune import prune as prune_store

    settings = settings_from_env(database_url=database_url)
    days = settings.retention_days if older_than_days is None else older_than_days
    if days <= 0 and older_than_days is None:
        console.print("Retention is off (CALLHOOK_RETENTION_DAYS=0): nothing pruned.")
        return
    db = set_up_database(settings.database_url)
    try:
        report = prune_store(
            db,
            now=SystemClock().now(),
            older_than=timedelta(days=days),
            batch_size=batch_size or settings.prune_batch_size,
        )
    finally:
        db.dispose()
    if as_json:
        print_json(
            {
                "deliveries": report.deliveries,
                "attempts": report.attempts,
                "events": report.events,
                "call_sequences": report.call_sequences,
                "sessions": report.sessions,
                "login_failures": report.login_failures,
                "alerts": report.alerts,
                "batches": report.batches,
            }
        )
        return
    console.print(
        f"Pruned {report.deliveries} deliveries, {report.attempts} attempts and "
        f"{report.events} events older than {days:g} days ({report.batches} batches)."
    )


def register(app: typer.Typer) -> None:
    """``callhook prune`` (and ``callhook db …``)."""
    app.command()(prune)
