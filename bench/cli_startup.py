"""``python -m bench.cli_startup [--runs N]``: how long the ``callhook`` command takes to answer.

Each command runs ``--runs`` times as a fresh process (what a person typing it pays, Python's own
start included), interleaved so that background load spreads over all of them; the table gives
the minimum, median and maximum wall time. ``python -c pass`` is the floor no command can beat.
The commands that only print help or text should stay near the floor: ``callhook`` imports the
platform, SQLAlchemy, pydantic, aiohttp and Rich only inside the commands that use them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CALLHOOK = str(Path(sys.executable).parent / "callhook")

COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
    ("callhook --help", [CALLHOOK, "--help"]),
    ("callhook tokens create --help", [CALLHOOK, "tokens", "create", "--help"]),
    ("callhook keys generate", [CALLHOOK, "keys", "generate"]),
    ("callhook events list", [CALLHOOK, "events", "list"]),
)


def measure(runs: int) -> dict[str, list[float]]:
    """Wall seconds per run of each command, interleaved round by round."""
    env = {**os.environ, "COLUMNS": "100"}
    timings: dict[str, list[float]] = {label: [] for label, _ in COMMANDS}
    for _ in range(runs):
        for label, argv in COMMANDS:
            started = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            timings[label].append(time.perf_counter() - started)
    return timings


def table(timings: dict[str, list[float]]) -> str:
    width = max(map(len, timings))
    lines = [f"{'command':<{width}}  {'min':>7}  {'median':>7}  {'max':>7}"]
    for label, values in timings.items():
        lines.append(
            f"{label:<{width}}  {min(values):>6.3f}s  {statistics.median(values):>6.3f}s"
            f"  {max(values):>6.3f}s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args(argv)
    print(f"{args.runs} runs each, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(table(measure(max(1, args.runs))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
