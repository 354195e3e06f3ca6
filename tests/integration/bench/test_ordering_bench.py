"""``python -m bench.ordering --smoke``: ordered beside unordered through real worker processes
and the ordering-checking sink; the checker finds violations without ordering and none with it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bench import ordering


@pytest.mark.timeout(480)
def test_ordering_smoke_counts_no_violation_when_ordered(tmp_path: Path) -> None:
    values = ordering.run(tmp_path, smoke=True)
    assert values["order_events"] > 0
    assert values["order_incomplete"] == values["order_unordered_incomplete"] == 0
    assert values["order_violations"] == 0
    assert values["order_gaps"] == 0
    # The same queue without ordering does arrive out of order: the checker can fail.
    assert values["order_unordered_violations"] > 0
    assert values["order_rate"] > 0
    assert values["order_unordered_rate"] > 0
    assert values["prio_samples"] == ordering.OrderSizes.smoke().live
    assert not math.isnan(values["prio_full_p99"])
    assert not math.isnan(values["prio_empty_p99"])
    # The full queue outlasted the measurement (else its last samples met an empty queue).
    assert values["prio_bulk_left"] > 0
    text = ordering.report(values, command="python -m bench.ordering --smoke")
    assert "order violations at the sink (must be 0)" in text
    # A flaky receiver and two worker processes, on SQLite and on PostgreSQL: order holds,
    # retries and all.
    for p in ("flaky", "flaky_pg"):
        assert values[f"{p}_violations"] == 0
        assert values[f"{p}_refused"] > 0
        assert values[f"{p}_events"] > 0
        assert values[f"{p}_incomplete"] == values[f"{p}_unordered_incomplete"] == 0
        assert values[f"{p}_gaps"] == 0  # nothing waited out the head-of-line bound
        assert values[f"{p}_unordered_violations"] > 0
    assert "Flaky receiver, PostgreSQL" in text
    assert ordering.violations(values) == 0
    assert ordering.violations({**values, "flaky_pg_violations": 1.0}) == 1
