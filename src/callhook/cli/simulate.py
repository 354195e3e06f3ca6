"""``callhook simulate``: publish realistic call traffic for one account (``callhook.simulate``)."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Annotated

import typer

from callhook.cli.common import (
    DatabaseOption,
    LazyModule,
    console,
    fail,
    set_up_database,
    settings_from_env,
)

if TYPE_CHECKING:
    import asyncio

    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from callhook import simulate as sim
else:
    sim = LazyModule("callhook.simulate")


def summary_table(stats: sim.Stats) -> Table:
    """The end-of-run table: conversations by kind, events by name, rates and errors."""
    from rich.table import Table

    table = Table(title="Simulation summary", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count / value", justify="right")
    for kind in sim.KINDS:
        if stats.by_kind.get(kind):
            table.add_row(f"conversations: {kind}", str(stats.by_kind[kind]))
    table.add_section()
    for event, count in sorted(stats.by_event.items()):
        table.add_row(f"events: {event}", str(count))
    table.add_section()
    table.add_row("events published", f"{stats.published:,} of {stats.planned:,}")
    table.add_row("events failed", str(stats.failed))
    table.add_row("publish calls", str(stats.batches))
    table.add_row("elapsed", f"{stats.elapsed:.1f} s")
    table.add_row("average rate", f"{stats.rate:,.1f} events/s")
    table.add_row(
        "publish latency p50 / p99",
        f"{stats.latency_ms(0.5):.1f} / {stats.latency_ms(0.99):.1f} ms",
    )
    for error, count in stats.errors.most_common(5):
        table.add_row(f"[red]error[/red] {error}", str(count))
    return table


async def _watch(
    progress: Progress, task_id: TaskID, stats: sim.Stats, done: asyncio.Event
) -> None:
    """Refresh the bar with the live rate (over the last second) and the overall rate."""
    import asyncio

    last_n, last_t = 0, time.monotonic()
    recent = 0.0
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=0.25)
        now = time.monotonic()
        if now - last_t >= 1.0 or done.is_set():
            recent = (stats.published - last_n) / max(now - last_t, 1e-9)
            last_n, last_t = stats.published, now
        progress.update(
            task_id,
            completed=stats.published + stats.failed,
            rate=f"{recent:,.0f} ev/s now · {stats.rate:,.0f} avg · {stats.failed} failed",
        )


async def run_with_progress(
    events: list[sim.SimEvent],
    publish: sim.PublishFn,
    *,
    concurrency: int,
    batch_size: int,
    out: Console,
    show: bool = True,
) -> sim.Stats:
    """Drive the simulation under a Rich progress bar with live rates."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    stats = sim.Stats()
    progress = Progress(
        TextColumn("[bold]simulating[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=out,
        disable=not show,
    )
    import asyncio

    done = asyncio.Event()
    with progress:
        task_id = progress.add_task("events", total=len(events), rate="")
        watcher = asyncio.create_task(_watch(progress, task_id, stats, done))
        try:
            await sim.drive(
                events, publish, concurrency=concurrency, batch_size=batch_size, stats=stats
            )
        finally:
            done.set()
            await watcher
    return stats


async def _over_http(
    events: list[sim.SimEvent], url: str, token: str, account: str, concurrency: int, batch: int
) -> sim.Stats:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        publish = sim.over_http(session, url, token, account)
        return await run_with_progress(
            events, publish, concurrency=concurrency, batch_size=batch, out=console
        )


def simulate(
    account: Annotated[str, typer.Option("--account", help="Account id to publish for.")],
    calls: Annotated[int, typer.Option(help="How many calls / SMS exchanges.")] = 100,
    rate: Annotated[float, typer.Option(help="New calls per second (0: all at once).")] = 5.0,
    concurrency: Annotated[int, typer.Option(help="Publish calls in flight at once.")] = 4,
    speed: Annotated[
        float, typer.Option(help="Compress the gaps inside a call by this factor (0: no gaps).")
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same calls.")] = 1,
    batch: Annotated[int, typer.Option(help="At most this many due events per publish.")] = 100,
    url: Annotated[
        str | None,
        typer.Option(help="Publish over HTTP to this server (e.g. http://127.0.0.1:8000)."),
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Bearer token (scope events.write) with --url.")
    ] = None,
    database_url: str | None = DatabaseOption,
) -> None:
    """Publish realistic call traffic for an account.

    Call lifecycles (and SMS) through the ingest path, in process or over HTTP.
    """
    import asyncio

    from callhook.core.clock import SystemClock

    if calls < 1 or concurrency < 1 or batch < 1:
        raise fail("--calls, --concurrency and --batch must be ≥ 1")
    if url is not None and token is None:
        raise fail("--url needs --token (scope events.write)")
    start = SystemClock().now()
    events = sim.plan(calls, seed=seed, start=start, rate=rate, speed=speed)
    if url is not None and token is not None:
        stats = asyncio.run(_over_http(events, url, token, account, concurrency, batch))
    else:
        from callhook.platform import Platform

        settings = settings_from_env(database_url=database_url)
        platform = Platform.create(settings, db=set_up_database(settings.database_url))
        try:
            publish = sim.in_process(platform.publisher, account)
            stats = asyncio.run(
                run_with_progress(
                    events, publish, concurrency=concurrency, batch_size=batch, out=console
                )
            )
        finally:
            platform.db.dispose()
    console.print(summary_table(stats))
    if stats.failed:
        raise typer.Exit(1)
