"""The one results table (Rich for the terminal, Markdown for docs/performance.md)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from bench.cluster import ROOT

SECTIONS = (
    "Throughput",
    "Ceiling",
    "Latency",
    "Isolation",
    "Throttle",
    "Fairness",
    "Resources",
    "Scale-out",
)


@dataclass(frozen=True)
class Row:
    section: str
    metric: str
    value: str
    bar: str
    verdict: str  # "pass", "MISS" or "" (no bar)


def _num(v: float | None, unit: str = "", digits: int = 0) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def _check(ok: bool | None) -> str:
    if ok is None:
        return ""
    return "pass" if ok else "MISS"


def _times(rate: float | None, ceiling: float) -> str:
    """``rate`` with its ratio to the same run's ceiling: ``5,300 (0.62×)``."""
    if rate is None or math.isnan(rate):
        return "n/a"
    ratio = rate / ceiling if ceiling and not math.isnan(ceiling) else math.nan
    return f"{_num(rate)} ({_num(ratio, '×', 2)})"


def rows(
    v: dict[str, float],
    *,
    prefill: int,
    concurrency: int,
    scale_events: int,
    scale_processes: tuple[int, ...],
    single_concurrency: int = 32,
) -> list[Row]:
    """Turn the measured values into the table's rows, with the bar of issue 16.

    Every deliveries/s figure also reads as a ratio of the same run's ceiling (the plain
    signed-POST loop to the same sink: what this machine can do for this work)."""
    get = v.get
    out: list[Row] = []
    ceiling = get("ceiling", math.nan)
    pre = get("throughput_prefilled", math.nan)
    ratio = pre / ceiling if ceiling else math.nan
    out += [
        Row(
            "Throughput",
            f"deliveries/s, pre-filled queue ({prefill:,}) (× ceiling)",
            _times(pre, ceiling),
            "≥ 10,000 and ≥ 0.70×",
            _check(pre >= 10_000 and ratio >= 0.7),
        ),
        Row(
            "Throughput",
            "deliveries/s, live publishing (× ceiling)",
            _times(get("throughput_live"), ceiling),
            "",
            "",
        ),
        Row(
            "Throughput",
            f"ingest events/s, single events, {single_concurrency} in flight",
            _num(get("ingest_single")),
            "≥ 5,000",
            _check(get("ingest_single", 0) >= 5_000),
        ),
        Row(
            "Throughput",
            "ingest events/s, batches of 100",
            _num(get("ingest_batched")),
            "≥ 15,000",
            _check(get("ingest_batched", 0) >= 15_000),
        ),
        Row(
            "Ceiling",
            f"signed-POST loop, fastest client (pycurl), {concurrency} in flight",
            _num(ceiling),
            "",
            "",
        ),
        Row(
            "Ceiling",
            "pre-filled throughput / ceiling",
            _num(ratio, digits=2),
            "≥ 0.70",
            _check(ratio >= 0.7),
        ),
    ]
    # Keys as ``phases.live`` writes them: ``lat_<rate>_…``, then ``lat_burst_<rate>_…``.
    keys = [k[4:-4] for k in v if k.startswith("lat_") and k.endswith("_p50")]
    for key in sorted(keys, key=lambda k: (k.startswith("burst_"), int(k.rsplit("_", 1)[-1]))):
        p50, p95, p99, top = (v[f"lat_{key}_{q}"] for q in ("p50", "p95", "p99", "max"))
        bar, ok = "", None
        if key == "1000":
            bar, ok = "p50 ≤ 10, p99 ≤ 50", p50 <= 10 and p99 <= 50
        elif key == "3000":
            bar, ok = "p99 ≤ 100", p99 <= 100
        load = int(key.rsplit("_", 1)[-1])
        what = ", each call's events back to back" if key.startswith("burst_") else ""
        achieved = _num(get(f"offered_{key}"))
        out.append(
            Row(
                "Latency",
                f"ms p50/p95/p99/max at {load:,} ev/s{what} (achieved {achieved})",
                f"{p50:.1f} / {p95:.1f} / {p99:.1f} / {top:.1f}",
                bar,
                _check(ok),
            )
        )
    iso = get("isolation_ratio", math.nan)
    per_event = get("bytes_per_delivered_event", math.nan)
    out += [
        Row(
            "Isolation",
            "healthy deliveries/s, all healthy",
            _num(get("isolation_baseline")),
            "",
            "",
        ),
        Row(
            "Isolation",
            "healthy deliveries/s, 10 % of endpoints dead (2 s timeouts), beside healthy ones",
            _num(get("isolation_with_dead")),
            "",
            "",
        ),
        Row("Isolation", "healthy kept", _num(iso * 100, " %"), "≥ 90 %", _check(iso >= 0.9)),
        *_throttle_rows(v),
        Row(
            "Fairness",
            "healthy endpoint's latency ms, idle (max of 3)",
            _num(get("fairness_idle_ms"), digits=1),
            "",
            "",
        ),
        Row(
            "Fairness",
            "… right after 60 endpoints answering in 1.9 s got 25 queued each (first contact)",
            _num(get("fairness_first_contact_ms"), digits=1),
            "",
            "",
        ),
        Row(
            "Fairness",
            "… while those backlogs drain (max of 3)",
            _num(get("fairness_backlog_ms"), digits=1),
            "≤ idle + 1,000",
            _check(
                get("fairness_backlog_ms", math.inf) <= get("fairness_idle_ms", math.inf) + 1000
            ),
        ),
        Row(
            "Resources",
            "worker CPU ms per delivery (ceiling loop per request)",
            f"{_num(get('cpu_ms_per_delivery'), digits=3)}"
            f" ({_num(get('ceiling_cpu_ms_per_delivery'), digits=3)})",
            "",
            "",
        ),
        Row(
            "Resources",
            "worker's event-loop thread while draining: cores busy, CPU ms per delivery",
            f"{_num(get('loop_cores'), digits=2)}, {_num(get('loop_ms_per_delivery'), digits=3)}",
            "",
            "",
        ),
        Row(
            "Resources",
            f"worker peak RSS, {prefill:,} pending",
            _num(get("peak_rss_mb"), " MB", 1),
            "< 300 MB",
            _check(get("peak_rss_mb", math.inf) < 300),
        ),
        Row(
            "Resources",
            "database bytes per delivered event with its attempt (bench.storage)",
            _num(per_event, " B"),
            "≤ 1,024 B",
            _check(per_event <= 1024) if not math.isnan(per_event) else "",
        ),
        Row(
            "Resources",
            "database size per million events (delivered, with attempts)",
            _num(get("db_mb_per_million"), " MB"),
            "",
            "",
        ),
        Row("Resources", "duplicate deliveries seen at the sink", _num(get("duplicates")), "", ""),
        Row(
            "Resources",
            "SQLite WAL peak, ingest / live publishing; after a clean stop",
            f"{_num(get('wal_peak_mb_ingest'), ' MB', 1)}"
            f" / {_num(get('wal_peak_mb_live'), ' MB', 1)}"
            f"; {_num(get('wal_after_stop_mb'), ' MB', 1)}",
            "≤ 72 MB (64 MiB + a batch)",
            _check(
                max(get("wal_peak_mb_ingest", math.inf), get("wal_peak_mb_live", math.inf)) <= 72
            ),
        ),
    ]
    # PostgreSQL beside SQLite, 1 and 2 worker processes on the same queue (issues 7 and 16).
    for k in scale_processes:
        processes = f"{k} worker process{'es' if k > 1 else ''}"
        pg = get(f"scale_postgresql_{k}", math.nan)
        bar, ok = ("postgresql ≥ 8,000", pg >= 8_000) if k == 2 else ("", None)
        out.append(
            Row(
                "Scale-out",
                f"deliveries/s, {processes} (× ceiling)",
                f"sqlite {_times(get(f'scale_sqlite_{k}'), ceiling)}"
                f" / postgresql {_times(pg, ceiling)}",
                bar,
                _check(ok),
            )
        )
        out.append(
            Row(
                "Scale-out",
                f"workers' CPU ms per delivery, {processes} (incl. start-up)",
                f"sqlite {_num(get(f'scale_cpu_ms_sqlite_{k}'), digits=3)}"
                f" / postgresql {_num(get(f'scale_cpu_ms_postgresql_{k}'), digits=3)}",
                "",
                "",
            )
        )
    out.append(
        Row(
            "Scale-out",
            f"pre-fill events/s, {scale_events:,} per run, batches of 100",
            f"sqlite {_num(get('scale_prefill_sqlite'))}"
            f" / postgresql {_num(get('scale_prefill_postgresql'))}",
            "",
            "",
        )
    )
    return out


def rich_table(table_rows: list[Row], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for name, justify in (("", "left"), ("metric", "left"), ("value", "right"), ("bar", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("")
    section = ""
    for r in table_rows:
        if r.section != section and section:
            table.add_section()
        shown = r.section if r.section != section else ""
        section = r.section
        verdict = {"pass": "[green]pass[/green]", "MISS": "[red]MISS[/red]"}.get(r.verdict, "")
        table.add_row(shown, r.metric, r.value, r.bar, verdict)
    return table


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "bench"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.strip()
        return out.stdout.strip() + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(table_rows: list[Row], *, command: str, smoke: bool, notes: list[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Run {when}{' (smoke: sizes shrunk, numbers not meaningful)' if smoke else ''}",
        "",
        f"- Machine: {machine()}",
        f"- Commit: `{commit()}`",
        f"- Command: `{command}`",
        "",
        "| section | metric | value | bar | |",
        "|---|---|---:|---|---|",
    ]
    lines += [
        f"| {r.section} | {r.metric} | {r.value} | {r.bar} | {r.verdict} |" for r in table_rows
    ]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _throttle_rows(v: dict[str, float]) -> list[Row]:
    """The throttle phase: the limited endpoint's rate over the window, its busiest second,
    and how much of their throughput the other endpoints kept beside it."""
    if "throttle_rate" not in v:
        return []
    limit, seconds = v["throttle_limit"], v["throttle_seconds"]
    bar = limit * (seconds + 1) / seconds  # rate × (T + 1) over T: the documented bound
    kept = v.get("throttle_others_kept", math.nan)
    return [
        Row(
            "Throttle",
            f"deliveries/s to an endpoint limited to {limit:g}/s, over {seconds:g} s",
            _num(v["throttle_rate"], digits=1),
            f"≤ {bar:.1f} (≤ 52)",
            _check(v["throttle_rate"] <= bar),
        ),
        Row(
            "Throttle",
            "its busiest second (the bucket's burst is half a second)",
            _num(v.get("throttle_peak_second"), digits=0),
            "",
            "",
        ),
        Row(
            "Throttle",
            "other endpoints: deliveries/s alone / beside it",
            f"{_num(v.get('throttle_others_alone'))} / {_num(v.get('throttle_others_beside'))}",
            "",
            "",
        ),
        Row("Throttle", "others kept", _num(kept * 100, " %"), "≥ 90 %", _check(kept >= 0.9)),
    ]
