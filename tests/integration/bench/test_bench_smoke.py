"""``python -m bench --smoke`` end to end: real sink, serve and worker processes, one table.

Proves the harness works; asserts the report's structure only (no timing assertions).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench import phases
from bench.cluster import free_port
from bench.report import SECTIONS

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(240)
def test_smoke_run_prints_one_table_and_records_it(tmp_path: Path) -> None:
    record = tmp_path / "performance.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--record-to",
            str(record),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("Callhook benchmark (smoke)") == 1
    for section in SECTIONS:
        assert section in out
    for metric in ("pre-filled", "ingest events/s", "signed-POST loop", "p50/p95/p99/max"):
        assert metric in out
    text = record.read_text()
    # The terminal table may wrap long metric names; the recorded Markdown never does.
    for metric in (
        "ingest events/s, single events, 32 in flight",
        "worker CPU ms per delivery",
        "database bytes per delivered event",
        "deliveries/s, 1 worker process (× ceiling)",
        "deliveries/s, 2 worker processes (× ceiling)",
    ):
        assert metric in text
    assert text.startswith("\n### Run ")
    assert "(smoke: sizes shrunk" in text
    assert "- Machine: " in text
    assert "cores" in text
    assert "- Commit: `" in text
    assert "- Command: `python -m bench --smoke" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| section | metric | value | bar |")
    sections = {row.split("|")[1].strip() for row in rows[1:]}
    assert sections == set(SECTIONS)
    values = [row.split("|")[3].strip() for row in rows[1:]]
    assert all(v and v != "n/a" for v in values), values  # every phase produced a number
    # Scale-out: both backends measured with 1 and 2 worker processes, side by side, each as a
    # ratio of the same run's ceiling too.
    scale = {
        row.split("|")[2].strip(): row.split("|")[3].strip()
        for row in rows[1:]
        if row.split("|")[1].strip() == "Scale-out"
    }
    for k in ("1 worker process", "2 worker processes"):
        value = scale[f"deliveries/s, {k} (× ceiling)"]
        assert value.startswith("sqlite "), value
        assert " / postgresql " in value, value
        assert "×)" in value, value
        assert "n/a" not in value, value
        assert "n/a" not in scale[f"workers' CPU ms per delivery, {k} (incl. start-up)"]
    assert sum(1 for line in text.splitlines() if line.startswith("- Scale-out, ")) == 4


def test_scale_out_fails_loudly_when_postgresql_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    monkeypatch.setattr(phases, "POSTGRES_URL", closed)
    with pytest.raises(RuntimeError, match="unreachable"):
        phases._postgres_schema()
