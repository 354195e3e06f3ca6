"""``python -m bench --only``: every name it offers is a phase, and a misspelt one is refused
before anything runs (it once ran nothing and recorded an empty table)."""

from __future__ import annotations

import inspect

import pytest
from bench import phases
from bench.__main__ import PHASES, main


def test_every_offered_phase_exists() -> None:
    run_source = inspect.getsource(main.__globals__["run"])
    for name in PHASES:
        if name != "ordering":  # bench/ordering.py, run after the table
            assert inspect.isfunction(getattr(phases, name, None)), name
            assert f"phases.{name})" in run_source, name


def test_a_misspelt_phase_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--only", "drain_prefiled", "--no-record"])
    assert stopped.value.code == 2
    assert "invalid choice: 'drain_prefiled'" in capsys.readouterr().err
