"""``python -m bench.endpoint_removal`` runs end to end on a small database and removes what it
says (its numbers are docs/performance.md's, not checked here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import endpoint_removal


def test_it_removes_the_endpoint_each_way_and_prints_a_row_for_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        endpoint_removal.main(["--events", "600", "--repeat", "1", "--workdir", str(tmp_path)]) == 0
    )

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| one transaction", "| batches of 500"]
    # Every delivery of the second endpoint went, each way: one per event.
    assert [r.split(" | ")[-1] for r in rows[1:]] == ["600 |", "600 |"]
