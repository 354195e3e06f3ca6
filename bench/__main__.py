"""``python -m bench [--smoke] [--no-record]``: run every phase, print one table, record it.

All load goes to 127.0.0.1, bounded in count and time; every child process is stopped at the end.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench import load, ordering, phases, report
from bench.cluster import ROOT, Cluster

DOC = ROOT / "docs" / "performance.md"
#: What ``--only`` takes: ``run``'s steps by function name, and the ordering part.
PHASES = (
    "ingest_and_prefill",
    "drain_prefilled",
    "ceiling",
    "isolation",
    "fairness",
    "live",
    "throttle",
    "scale_out",
    "ordering",
)


def run(
    smoke: bool, workdir: Path, console: Console, only: frozenset[str] = frozenset()
) -> phases.Results:
    sizes = phases.Sizes.smoke() if smoke else phases.Sizes()
    out = phases.Results()
    cluster = Cluster(workdir)
    try:
        cluster.start_sink()
        accounts = cluster.prepare(load=10, healthy=18, dead=2, seed=6)
        pool = load.event_pool(sizes.pool_calls, seed=6)
        steps = (
            ("ingest (single, batches of 100) → pre-fill", phases.ingest_and_prefill),
            ("drain the pre-filled queue (callhook worker)", phases.drain_prefilled),
            ("ceiling (signed-POST loop)", phases.ceiling),
            ("isolation by endpoint (baseline, 10 % dead endpoints)", phases.isolation),
            ("fairness (60 slow endpoints with backlogs, one healthy)", phases.fairness),
            ("live publishing and latency (serve --no-worker + worker)", phases.live),
            ("throttle (one endpoint at 50/s, worker --processes 2)", phases.throttle),
            ("scale-out: SQLite and PostgreSQL, worker --processes 1 and 2", phases.scale_out),
        )
        for label, step in steps:
            if only and step.__name__ not in only:
                continue
            t0 = time.monotonic()
            console.print(f"[dim]→ {label}[/dim]")
            step(cluster, accounts, pool, sizes, out)
            console.print(f"[dim]  done in {time.monotonic() - t0:.1f} s[/dim]")
    finally:
        cluster.stop_all()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="shrink every phase to seconds")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/performance.md"
    )
    parser.add_argument("--record-to", type=Path, default=DOC, help="where to append results")
    parser.add_argument("--workdir", type=Path, help="keep the database and logs here")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=PHASES,
        metavar="PHASE",
        help=f"run only this phase (repeatable): {', '.join(PHASES)}",
    )
    args = parser.parse_args(argv)
    # A wide table even when piped (CI logs, the smoke test).
    console = Console(width=None if sys.stdout.isatty() else 132)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="callhook-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = run(args.smoke, workdir, console, frozenset(args.only))
    sizes = phases.Sizes.smoke() if args.smoke else phases.Sizes()
    table_rows = report.rows(
        results.values,
        prefill=sizes.prefill,
        concurrency=128,
        single_concurrency=sizes.single_concurrency,
        scale_events=sizes.scale_events,
        scale_processes=sizes.scale_processes,
    )
    title = "Callhook benchmark" + (" (smoke)" if args.smoke else "")
    console.print(report.rich_table(table_rows, title))
    # Issue 14: ordered beside unordered (with a flaky receiver and two workers too), and
    # call-control priority (its own sink and queues).
    order_values: dict[str, float] = {}
    order_text = ""
    if not args.only or "ordering" in args.only:
        console.print("[dim]→ ordering: ordered vs unordered, call-control priority[/dim]")
        with tempfile.TemporaryDirectory(prefix="callhook-order-") as tmp:
            order_values = ordering.run(Path(tmp), args.smoke)
        order_text = ordering.report(order_values, command=command.strip())
        console.print(order_text)
    if not args.no_record:
        text = report.markdown(
            table_rows, command=command.strip(), smoke=args.smoke, notes=results.notes
        )
        with args.record_to.open("a") as f:
            f.write("\n" + text)
            if order_text:
                f.write("\n" + order_text)
        console.print(f"[dim]appended to {args.record_to}[/dim]")
    return 0 if ordering.violations(order_values) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
